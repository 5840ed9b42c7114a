"""Tests for the label-quality metrics, against brute-force and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tokenlabel_jax import evaluation


def pairwise_auc(scores, labels):
  """The definition: over all (positive, negative) pairs, 1 if the positive scores higher, 1/2 on a tie."""
  pos = [s for s, y in zip(scores, labels) if y]
  neg = [s for s, y in zip(scores, labels) if not y]
  wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
  return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_pairwise_count_with_ties(seed):
  rng = np.random.default_rng(seed)
  n = 150
  labels = rng.random(n) < 0.3
  scores = rng.integers(0, 6, n) + labels * rng.integers(0, 3, n)  # few distinct values: many ties
  assert evaluation.roc_auc(scores, labels) == pytest.approx(pairwise_auc(scores, labels), abs=1e-12)
  assert evaluation.roc_auc(scores / 7.0, labels.astype(int)) == pytest.approx(pairwise_auc(scores, labels))


def test_auc_perfect_inverted_and_constant():
  labels = [0, 0, 1, 1, 0, 1]
  scores = [0.1, 0.2, 0.8, 0.9, 0.3, 0.7]
  assert evaluation.roc_auc(scores, labels) == 1.0
  assert evaluation.roc_auc([-s for s in scores], labels) == 0.0
  assert evaluation.roc_auc([0.5] * 6, labels) == 0.5
  assert evaluation.roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75  # 3 of 4 pairs ordered


def test_auc_needs_both_classes():
  with pytest.raises(ValueError):
    evaluation.roc_auc([0.1, 0.2], [1, 1])
  with pytest.raises(ValueError):
    evaluation.roc_auc([0.1, 0.2], [0, 0])
  with pytest.raises(ValueError):
    evaluation.roc_auc([0.1, 0.2], [0, 0.5])  # not binary
  with pytest.raises(ValueError):
    evaluation.roc_auc([0.1, float("nan")], [0, 1])


def test_binary_metrics_by_hand():
  # Predicted positive: indices 0, 1, 2 (> 0.5). Labels positive: 0, 3.
  # tp=1 (0), fp=2 (1, 2), fn=1 (3), tn=2 (4, 5; 0.5 itself is not above the threshold).
  p = [0.9, 0.6, 0.7, 0.2, 0.5, 0.1]
  y = [1, 0, 0, 1, 0, 0]
  m = evaluation.binary_metrics(p, y)
  assert m["accuracy"] == pytest.approx(3 / 6)
  assert m["precision"] == pytest.approx(1 / 3)
  assert m["recall"] == pytest.approx(1 / 2)
  assert m["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))  # = 0.4
  m = evaluation.binary_metrics(p, y, threshold=0.8)
  assert (m["precision"], m["recall"], m["accuracy"]) == (1.0, 0.5, 5 / 6)


def test_binary_metrics_degenerate():
  m = evaluation.binary_metrics([0.1, 0.2], [0, 0])
  assert m == {"accuracy": 1.0, "f1": 0.0, "precision": 0.0, "recall": 0.0}
  m = evaluation.binary_metrics([0.9, 0.8], [1, 1])
  assert m == {"accuracy": 1.0, "f1": 1.0, "precision": 1.0, "recall": 1.0}


def test_metrics_from_scores_binarizes_targets():
  scores = [0.9, 0.4, 0.6, 0.1]
  targets = [0.8, 0.5, 1.0, 0.0]  # 0.5 is not above 0.5: negative
  m = evaluation.metrics_from_scores(scores, targets)
  assert m["n"] == 4 and m["n_positive"] == 2
  assert m["auc"] == 1.0 and m["accuracy"] == 1.0 and m["f1"] == 1.0
  m = evaluation.metrics_from_scores([0.2, 0.7], [1.0, 1.0])
  assert math.isnan(m["auc"]) and m["accuracy"] == 0.5 and m["n_positive"] == 2
  with pytest.raises(ValueError):
    evaluation.metrics_from_scores([0.2, 0.7], [1.0])


def test_rank_of():
  losses = [2.0, 1.0, 3.0, 1.0, 0.5]
  assert evaluation.rank_of(0.5, losses) == 1.0
  assert evaluation.rank_of(1.0, losses) == 2.5  # tied for ranks 2 and 3
  assert evaluation.rank_of(2.0, losses) == 4.0
  assert evaluation.rank_of(3.0, losses) == 5.0
  assert evaluation.rank_of(7.0, [7.0] * 4) == 2.5
  with pytest.raises(ValueError):
    evaluation.rank_of(1.5, losses)  # must be one of the values
  with pytest.raises(ValueError):
    evaluation.rank_of(1.0, [1.0, float("nan")])


def test_metrics_from_logits_rank_logits_and_predict_above_zero():
  logits, targets = [17.0, 18.0, 20.0, 25.0, -3.0, 0.3], [0, 1, 0, 1, 0, 1]
  m = evaluation.metrics_from_logits(logits, targets)
  assert m["auc"] == pytest.approx(evaluation.roc_auc(logits, targets))  # sigmoid in float32 would tie four
  assert m["accuracy"] == pytest.approx(4 / 6) and m["f1"] == pytest.approx(0.75)  # logit 0.3: probability 0.57
  np.testing.assert_allclose(evaluation.sigmoid([0.0, 40.0]), [0.5, 1.0])
