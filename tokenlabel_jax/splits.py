"""The examples a label is judged on, and the figures of hard labels on them.

A `Split` is one set of a feature's examples (train, validation or held-out) with their discriminator prompts
prepared and their targets; `example_texts` is what the discriminator reads of each example. `evaluate_labels` is the
one way a hard label is measured: calibration fitted on validation examples, AUC/accuracy/F1 on held-out ones.
Labeling (labeling.py) builds the splits; choosing among candidates (selection.py) and the `score` command measure
labels on them.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Sequence

import jax.numpy as jnp
import numpy as np

from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import evaluation
from tokenlabel_jax import optimization as opt_lib
from tokenlabel_jax.loading import LoadedModel


def example_texts(feature: data_lib.Feature, examples: Sequence[data_lib.Example],
                  disc: disc_lib.DiscriminatorConfig) -> list[disc_lib.ExampleText]:
  """What the discriminator reads of each example: the highlighted token as a word, and the text window around it
  with the token marked [[ ]] (its own context_before/after tokens)."""
  out = []
  for ex in examples:
    before, tok, after = data_lib.context_window(feature.records[ex.record], ex.index, disc.context_before,
                                                 disc.context_after)
    word = data_lib.word_of(tok) or tok
    context = ("".join(before) + " [[" + word + "]]" + "".join(after)).strip()
    out.append(disc_lib.ExampleText(word=word, context=context))
  return out


@dataclasses.dataclass
class Split:
  """One set of examples with everything a label is measured against: prompts prepared once, targets, positives."""

  examples: list[data_lib.Example]
  prep: disc_lib.Prepared | None  # None once stacked with other features for training (labeling.label_features)
  target_B: np.ndarray  # the loss target (binary, or graded in continuous mode)
  positive_B: np.ndarray | None = None  # activation > threshold: what every check and metric counts as positive
  # (None: target_B > 0.5, for a Split built by hand from binary targets)

  def __post_init__(self):
    if self.positive_B is None:
      self.positive_B = np.asarray(self.target_B) > 0.5

  def effective_counts(self, by_word: bool) -> tuple[float, float]:
    """(positives, negatives) as the number of independent scores each class holds, for an AUC's error bar.
    Examples that must get one score form a cluster: the draws of one token (a feature with fewer positive tokens
    than asked for is sampled with repeats), and with `by_word` (a discriminator that reads only the word) every
    token of one word, as the prompt shows it. A class of clusters of sizes n_c counts (sum n_c)^2 / sum n_c^2, Kish's
    effective sample size for clusters whose members are equal: the number of clusters when they are of one size."""
    pos = np.asarray(self.positive_B, bool)
    if len(self.examples) != len(pos):  # a Split built by hand from targets alone
      return float(pos.sum()), float((~pos).sum())
    def key(e: data_lib.Example):
      if by_word and e.tokens:
        return data_lib.word_of(e.tokens[e.index]) or e.tokens[e.index]
      return (e.record, e.index)
    out = []
    for want in (True, False):
      sizes = np.asarray(list(collections.Counter(key(e) for e, p in zip(self.examples, pos) if p == want).values()),
                         np.float64)
      out.append(float(sizes.sum() ** 2 / (sizes ** 2).sum()) if len(sizes) else 0.0)
    return out[0], out[1]


def evaluate_labels(m: LoadedModel, disc: disc_lib.DiscriminatorConfig, label_ids: Sequence[Sequence[int]],
                    val: Split, test: Split) -> list[dict[str, Any]]:
  """Hard labels: calibration fitted on validation, AUC/accuracy/F1 on `test`. One row per label."""
  by_len: dict[int, list[int]] = {}
  for i, ids in enumerate(label_ids):
    by_len.setdefault(len(ids), []).append(i)
  results: dict[int, dict[str, Any]] = {}
  for n, idx in by_len.items():
    ids = jnp.asarray([label_ids[i] for i in idx], jnp.int32)
    s_val = np.asarray(disc_lib.hard_scores(m.params, m.cfg, disc, val.prep, ids))
    s_test = np.asarray(disc_lib.hard_scores(m.params, m.cfg, disc, test.prep, ids))
    for i, row in zip(idx, rows_from_scores(disc, s_val, s_test, val, test)):
      results[i] = row
  return [results[i] for i in range(len(label_ids))]


def rows_from_scores(disc: disc_lib.DiscriminatorConfig, s_val_CxB: np.ndarray, s_test_CxB: np.ndarray,
                     val: Split, test: Split) -> list[dict[str, Any]]:
  """`evaluate_labels` from scores already computed: calibration on validation (against the loss targets), figures
  on the test examples (against positive = activation > threshold)."""
  a, b, val_loss = opt_lib.fit_calibration(s_val_CxB, val.target_B, disc.max_scale if disc.calibrate else None)
  rows = []
  for j in range(s_val_CxB.shape[0]):
    rows.append({"val_loss": float(val_loss[j]), "val_auc": _auc(s_val_CxB[j], val.positive_B),
                 **evaluation.metrics_from_logits(evaluation.calibrated_logit(a[j], b[j], s_test_CxB[j]),
                                                  test.positive_B)})
  return rows


def _auc(scores, positive_B) -> float:
  """Validation AUC, NaN where the validation examples hold one class only."""
  try:
    return float(evaluation.roc_auc(scores, positive_B))
  except ValueError:
    return float("nan")
