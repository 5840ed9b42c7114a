"""Metrics for how well a label predicts a feature: plain numpy, no fitting, so every number can be checked by hand."""

from __future__ import annotations

from typing import Sequence

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


def _average_ranks(x: np.ndarray) -> np.ndarray:
  """1-based ranks of x, ties given the mean of the ranks they span (as the Mann-Whitney U statistic needs)."""
  order = np.argsort(x, kind="stable")
  sorted_x = x[order]
  # Start of each run of equal values, and its length.
  starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
  lengths = np.diff(np.r_[starts, len(x)])
  run_ranks = starts + (lengths + 1) / 2.0  # mean of ranks starts+1 .. starts+lengths
  ranks = np.empty(len(x), dtype=np.float64)
  ranks[order] = np.repeat(run_ranks, lengths)
  return ranks


def _labels(labels: ArrayLike, n: int) -> np.ndarray:
  y = np.asarray(labels)
  if y.shape != (n,):
    raise ValueError(f"labels have shape {y.shape}, scores have shape ({n},)")
  if y.dtype != bool and not np.isin(y, (0, 1)).all():
    raise ValueError("labels must be 0/1 or booleans (binarize targets first)")
  return y.astype(bool)


def _scores(scores: ArrayLike) -> np.ndarray:
  s = np.asarray(scores, dtype=np.float64)
  if s.ndim != 1:
    raise ValueError(f"scores must be one-dimensional, got shape {s.shape}")
  if not np.isfinite(s).all():
    raise ValueError("scores hold NaN or infinite values")
  return s


def roc_auc(scores: ArrayLike, labels: ArrayLike) -> float:
  """P(score of a random positive > score of a random negative), ties counting 1/2 (Mann-Whitney U / (n+ n-))."""
  s = _scores(scores)
  y = _labels(labels, len(s))
  n_pos = int(y.sum())
  n_neg = len(y) - n_pos
  if n_pos == 0 or n_neg == 0:
    raise ValueError(f"AUC needs both classes; got {n_pos} positives and {n_neg} negatives")
  u = _average_ranks(s)[y].sum() - n_pos * (n_pos + 1) / 2.0
  return float(u / (n_pos * n_neg))


def binary_metrics(probabilities: ArrayLike, labels: ArrayLike, threshold: float = 0.5) -> dict[str, float]:
  """Accuracy, F1, precision and recall of predicting positive where probability > threshold.

  Undefined ratios (no predicted positives, no actual positives) are 0, as is F1 when precision + recall is 0.
  """
  p = _scores(probabilities)
  y = _labels(labels, len(p))
  if not len(p):
    raise ValueError("no examples to score")
  pred = p > threshold
  tp = int((pred & y).sum())
  fp = int((pred & ~y).sum())
  fn = int((~pred & y).sum())
  precision = tp / (tp + fp) if tp + fp else 0.0
  recall = tp / (tp + fn) if tp + fn else 0.0
  f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  return {"accuracy": float((pred == y).mean()), "f1": f1, "precision": precision, "recall": recall}


def metrics_from_scores(scores: ArrayLike, targets: ArrayLike, threshold: float = 0.5) -> dict[str, float]:
  """AUC, accuracy and F1 of probabilities against targets in [0, 1], which count as positive above 0.5; the
  prediction is positive where the score exceeds `threshold` (0 for logits: `metrics_from_logits`).

  AUC is NaN (not an error) when only one class is present, so a summary over many features can still be written.
  """
  p = _scores(scores)
  t = np.asarray(targets, dtype=np.float64)
  if t.shape != p.shape:
    raise ValueError(f"targets have shape {t.shape}, scores have shape {p.shape}")
  y = t > 0.5
  n_pos = int(y.sum())
  auc = roc_auc(p, y) if 0 < n_pos < len(y) else float("nan")
  m = binary_metrics(p, y, threshold)
  return {"auc": auc, "accuracy": m["accuracy"], "f1": m["f1"], "n": int(len(y)), "n_positive": n_pos}


def calibrated_logit(scale: float, bias: float, scores: ArrayLike) -> np.ndarray:
  """scale * score + bias, in float64: the logit of a calibrated discriminator's probability."""
  return float(scale) * np.asarray(scores, np.float64) + float(bias)


def metrics_from_logits(logits: ArrayLike, targets: ArrayLike) -> dict[str, float]:
  """`metrics_from_scores` of sigmoid(logits), ranked on the logits themselves: a probability rounds to exactly 1
  once its logit passes about 17 in float32 (37 in float64), and the AUC would count examples the logits still rank
  as ties."""
  return metrics_from_scores(logits, targets, threshold=0.0)


def sigmoid(logits: ArrayLike) -> np.ndarray:
  return 1 / (1 + np.exp(-np.asarray(logits, np.float64)))


def rank_of(value: float, values: ArrayLike) -> float:
  """1-based rank of `value` among `values` (which must contain it), lower = better, ties sharing their mean rank.

  E.g. the concept word's loss among the losses of all candidate labels: rank 1 means no candidate did better.
  """
  v = np.asarray(values, dtype=np.float64)
  if v.ndim != 1 or not np.isfinite(v).all() or not np.isfinite(value):
    raise ValueError("rank_of needs finite numbers")
  equal = int((v == value).sum())
  if not equal:
    raise ValueError(f"value {value} is not among the values it is ranked in")
  return 1.0 + int((v < value).sum()) + (equal - 1) / 2.0


def vocab_auc(logq_BxV: np.ndarray, target_B: np.ndarray, mask_V: np.ndarray, chunk: int = 2048) -> np.ndarray:
  """AUC of every column as a score (the namer: token t's score on example i is log q_i[t]); NaN outside mask_V."""
  logq_BxV = np.asarray(logq_BxV)
  pos, neg = logq_BxV[target_B > 0.5], logq_BxV[target_B <= 0.5]
  out = np.full(logq_BxV.shape[1], np.nan, np.float32)
  for i in range(0, logq_BxV.shape[1], chunk):
    p, n = pos[:, None, i:i + chunk], neg[None, :, i:i + chunk]
    out[i:i + chunk] = ((p > n).mean((0, 1)) + 0.5 * (p == n).mean((0, 1)))
  out[~mask_V] = np.nan
  return out
