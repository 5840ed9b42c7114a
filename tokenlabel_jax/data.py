"""Activation records: load them in any format read, split them, and draw balanced token examples to label.

A record is one text as the subject model tokenized it, with one activation per token (records.py: the types, JSONL
and its checks; formats.py: other tools' exports). Reading files is the only I/O here; everything after
`load_features` is a pure function of its arguments.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from typing import Sequence

import numpy as np

from tokenlabel_jax import formats
from tokenlabel_jax import records as records_lib
from tokenlabel_jax.errors import UserError
from tokenlabel_jax.records import SPLITS, Feature, Record  # pylint: disable=unused-import  # data.Feature, as before

TARGET_MODES = ("binary", "continuous")
NEGATIVE_MODES = ("random", "same_record", "near_miss")
CONTINUOUS_SCALE_QUANTILE = 0.9
_SPACE_MARKERS = " \u0120\u2581"  # plain space, GPT-2 byte-level 'Ġ', SentencePiece '▁'


@dataclasses.dataclass(frozen=True)
class Example:
  """One highlighted token: `feature.records[record].tokens[index]`, with its loss target in [0, 1].

  `positive` (activation > threshold) is the one definition of positive: sampling, split checks and every metric use
  it. `target` only shapes the loss: equal to `positive` in binary mode, graded in continuous mode.
  """

  record: int
  index: int
  target: float
  tokens: tuple[str, ...] = dataclasses.field(default=(), repr=False, compare=False)
  positive: bool | None = None  # None: target > 0.5 (an Example built by hand with a binary target)

  def __post_init__(self):
    if self.positive is None:
      object.__setattr__(self, "positive", self.target > 0.5)

  @property
  def token(self) -> str:
    return self.tokens[self.index]


# ----------------------------------------------------------------------------------------------------------------
# Loading.


def load_features(path: str | os.PathLike, subject_tokenizer: str | None = None) -> list[Feature]:
  """Reads a .jsonl file or a directory of them (records.load_jsonl), or another tool's export (formats.load, picked
  by `formats.detect`); every problem is a UserError naming file and line.

  Records without a `feature` field belong to a feature named after their file's stem; records of the same feature
  in several files are merged, in file order. Features are returned in order of first appearance. Other tools'
  exports (Neuronpedia, SAEDashboard, delphi, OpenAI neuron-explainer) are read by `formats`; `subject_tokenizer`
  turns token ids into strings where a format stores ids (delphi).
  """
  path = os.fspath(path)
  if all(os.path.isfile(os.path.join(path, f)) for f in ("explanations.jsonl", "index.html")):
    raise UserError(f"{path} is the output folder of a label or explain run, not features",
                    "pass the features that run read as --features; this folder is its --output_dir (give it "
                    "there to resume the run)")
  if os.path.exists(path) and formats.detect(path) != "jsonl":
    return formats.load(path, subject_tokenizer)
  return records_lib.load_jsonl(path, subject_tokenizer)


# ----------------------------------------------------------------------------------------------------------------
# Targets, splits and sampling: pure functions.


def targets(feature: Feature, mode: str = "binary", threshold: float = 0.0,
            scale_quantile: float = CONTINUOUS_SCALE_QUANTILE) -> tuple[np.ndarray, ...]:
  """Per-token loss targets in [0, 1], one float32 array per record; a token is positive iff act > threshold.

  "binary": 1 for positives, 0 otherwise. "continuous": positives get act / scale clipped to [0, 1], all others 0,
  where scale is the `scale_quantile` quantile of the positive activations of the feature's non-held-out records.
  A quantile, not the max: SAE latents are heavy-tailed, and one outlier (10 among values of 0.5-4) would otherwise
  squash every other positive toward 0. Held-out records (once split) shape nothing.
  """
  if mode == "binary":
    return tuple((r.activations > threshold).astype(np.float32) for r in feature.records)
  if mode == "continuous":
    scale = continuous_scale(feature, threshold, scale_quantile)
    return tuple(np.where(r.activations > threshold, np.clip(r.activations / np.float32(scale), 0.0, 1.0), 0.0
                          ).astype(np.float32) for r in feature.records)
  raise ValueError(f"target mode {mode!r} is not one of {TARGET_MODES}")


def continuous_scale(feature: Feature, threshold: float = 0.0,
                     scale_quantile: float = CONTINUOUS_SCALE_QUANTILE) -> float:
  """The activation that maps to target 1 in continuous mode (see `targets`)."""
  if not 0 < scale_quantile <= 1:
    raise ValueError(f"scale_quantile={scale_quantile} is not in (0, 1]")
  records = [r for r in feature.records if r.split != "heldout"] or list(feature.records)
  acts = np.concatenate([r.activations for r in records])
  pos = acts[acts > threshold]
  if not len(pos):
    raise UserError(f"feature {feature.name!r} has no positive activation (> {threshold:g}) outside its held-out "
                    "records", "add records where the feature fires, or lower --threshold")
  return float(np.quantile(pos.astype(np.float64), scale_quantile))


def assign_splits(feature: Feature, heldout_fraction: float = 0.25, seed: int = 0, threshold: float = 0.0) -> Feature:
  """Gives every record without a split one, so held-out texts are never trained on.

  Records that contain a positive token (act > threshold) and those that do not are split separately, so both splits get
  positives when there are at least two such records. Within each group, records are ranked by a seeded hash of
  their tokens and the lowest round(fraction * n) go to "heldout" (at least one and at most n - 1 when n >= 2 and
  the fraction is in (0, 1)). Hashing content, not position, makes the split the same whatever the file order and
  moves at most one record per group when a record is added. Records with an explicit split keep it.
  """
  if not 0 <= heldout_fraction <= 1:
    raise ValueError(f"heldout_fraction={heldout_fraction} is not in [0, 1]")
  splits = [r.split for r in feature.records]
  for has_positive in (True, False):
    group = [i for i, r in enumerate(feature.records)
             if r.split is None and bool((r.activations > threshold).any()) == has_positive]
    n = len(group)
    n_held = math.floor(heldout_fraction * n + 0.5)
    if n >= 2 and 0 < heldout_fraction < 1:
      n_held = min(max(n_held, 1), n - 1)
    ranked = sorted(group, key=lambda i: (_split_key(feature.records[i].tokens, seed), i))
    for k, i in enumerate(ranked):
      splits[i] = "heldout" if k < n_held else "train"
  records = tuple(r if r.split == s else dataclasses.replace(r, split=s) for r, s in zip(feature.records, splits))
  return dataclasses.replace(feature, records=records)


def _split_key(tokens: Sequence[str], seed: int) -> bytes:
  text = "\x1f".join(tokens)
  return hashlib.blake2b(f"{seed}\x00{text}".encode("utf-8", "surrogatepass"), digest_size=8).digest()


def sample_examples(feature: Feature, *, n: int, split: str, seed: int, positive_fraction: float = 0.5,
                    negatives: str = "random", target_mode: str = "binary", threshold: float = 0.0,
                    heldout_fraction: float = 0.25, split_seed: int = 0,
                    scale_quantile: float = CONTINUOUS_SCALE_QUANTILE) -> list[Example]:
  """Draws n token examples from one split, each positive (act > threshold) with probability `positive_fraction`.

  Positives and negatives are each drawn without replacement until their pool runs out, then uniformly with
  replacement. Deterministic given `seed`; the coin flips, positives and negatives use separate streams, so changing
  `negatives` does not change which draws are positive. Records without a split are assigned by
  `assign_splits(feature, heldout_fraction, split_seed, threshold)` — deliberately not `seed`, so that train and
  held-out stay disjoint across sampling seeds. `negatives`:
    "random": any inactive token of the split.
    "same_record": inactive tokens of records holding a positive (all inactive tokens if there are none).
    "near_miss": inactive tokens with 0 < act <= threshold first, strongest first, then the rest at random
      (so with threshold 0 this is "random").
  """
  if split not in SPLITS:
    raise ValueError(f"split {split!r} is not one of {SPLITS}")
  if negatives not in NEGATIVE_MODES:
    raise ValueError(f"negatives {negatives!r} is not one of {NEGATIVE_MODES}")
  if not 0 <= positive_fraction <= 1:
    raise ValueError(f"positive_fraction={positive_fraction} is not in [0, 1]")
  if n < 0:
    raise ValueError(f"n={n} is negative")
  explicit = any(r.split is not None for r in feature.records)
  highest = max(float(r.activations.max()) for r in feature.records)
  lowest = min(float(r.activations.min()) for r in feature.records)
  if positive_fraction > 0 and highest <= threshold:  # no split can help: the threshold is the problem
    raise UserError(f"feature {feature.name!r}: no activation is above the threshold {threshold:g} (the highest is "
                    f"{highest:g})", f"lower --threshold below {highest:g}")
  if positive_fraction < 1 and lowest > threshold:
    raise UserError(f"feature {feature.name!r}: every activation is above the threshold {threshold:g} (the lowest is "
                    f"{lowest:g}), so there is no negative example", f"raise --threshold to at least {lowest:g}")
  feature = assign_splits(feature, heldout_fraction, split_seed, threshold)
  tgt = targets(feature, target_mode, threshold, scale_quantile)

  pos, neg, neg_act, pos_records = [], [], [], set()
  for r, record in enumerate(feature.records):
    if record.split != split:
      continue
    active = record.activations > threshold
    idx = np.arange(len(active))
    pos.extend((r, int(i)) for i in idx[active])
    neg.extend((r, int(i)) for i in idx[~active])
    neg_act.extend(record.activations[~active].tolist())
    if active.any():
      pos_records.add(r)
  if explicit:
    fix = (f"add records with split={split} that contain both active (> {threshold:g}) and inactive tokens, or remove "
           "the split field so records are split automatically")
  else:  # the automatic split moves whole records: one text cannot give both training and held-out examples
    fix = (f"add more texts: held-out examples come from other records than training ones, so at least two records "
           f"must hold an active (> {threshold:g}) token and two an inactive one (20 or more give usable figures)")
  if positive_fraction > 0 and not pos:
    raise UserError(f"feature {feature.name!r}: split {split!r} has no positive example (activation > {threshold:g})",
                    fix)
  if positive_fraction < 1 and not neg:
    raise UserError(f"feature {feature.name!r}: split {split!r} has no negative example "
                    f"(activation <= {threshold:g})", fix)

  coin_rng, pos_rng, neg_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
  is_pos = coin_rng.random(n) < positive_fraction
  n_pos = int(is_pos.sum())
  pos_pick = _draw(pos_rng.permutation(len(pos)), n_pos, pos_rng)

  neg_act_arr = np.asarray(neg_act, dtype=np.float32)
  pool = np.arange(len(neg))
  if negatives == "same_record":
    same = np.asarray([rec in pos_records for rec, _ in neg], dtype=bool)
    if same.any():
      pool = pool[same]
  order = neg_rng.permutation(pool)
  if negatives == "near_miss":
    near = neg_act_arr[order] > 0
    strongest_first = np.argsort(-neg_act_arr[order][near], kind="stable")
    order = np.concatenate([order[near][strongest_first], order[~near]])
  neg_pick = _draw(order, n - n_pos, neg_rng)

  out, pi, ni = [], iter(pos_pick), iter(neg_pick)
  for p in is_pos:
    r, i = pos[next(pi)] if p else neg[next(ni)]
    out.append(Example(r, i, float(tgt[r][i]), feature.records[r].tokens, positive=bool(p)))
  return out


def _draw(order: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
  """The first k of `order`; past its end, uniform draws with replacement from it."""
  if k <= len(order):
    return order[:k]
  return np.concatenate([order, order[rng.integers(len(order), size=k - len(order))]])


# ----------------------------------------------------------------------------------------------------------------
# Presenting tokens.


def context_window(record: Record, index: int, before: int,
                   after: int) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
  """Up to `before` tokens, the token at `index`, and up to `after` tokens: bounded, so long texts fit a prompt."""
  if not 0 <= index < len(record.tokens):
    raise IndexError(f"token index {index} is outside a record of {len(record.tokens)} tokens ({record.source})")
  if before < 0 or after < 0:
    raise ValueError(f"before={before} and after={after} must be >= 0")
  toks = record.tokens
  return toks[max(0, index - before):index], toks[index], toks[index + 1:index + 1 + after]


def word_of(token: str) -> str:
  """The token as a reader sees it: no leading space marker (' ', 'Ġ', '▁') and no surrounding whitespace."""
  return token.strip().lstrip(_SPACE_MARKERS).strip()


def shared_word_share(examples: Sequence[Example]) -> float:
  """The share of positive examples whose word (case ignored) is also the word of a negative one. Near 1, the
  feature follows the context, not the word: a discriminator that reads only the word scores both alike and no
  label of the word can separate them (experiments/context/README.md)."""
  neg = {word_of(e.tokens[e.index]).lower() for e in examples if not e.positive}
  pos = [word_of(e.tokens[e.index]).lower() for e in examples if e.positive]
  return sum(w in neg for w in pos) / len(pos) if pos else 0.0
