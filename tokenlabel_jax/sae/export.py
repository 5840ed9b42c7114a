"""Per-feature activation records in the project's JSONL format, chosen as SAE dashboards and delphi's caches do.

For each feature and each split (train / held-out, by context) a record is a whole context with the feature's raw
activation on every token, drawn as:
  - "q0".."q{n-1}": activating contexts (max activation > threshold) across rank quantiles of their maximum, q0 the
    top bin (its strongest contexts, as a dashboard shows first), the others sampled at random within their bin;
  - "near_miss": non-activating contexts that hold one of the tokens the feature fires on most often;
  - "random": non-activating contexts at random.
Activations are written as they are (continuous); which tokens count as positive is the labeler's --threshold.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Any, Iterator, Sequence

import numpy as np

SPLIT_NAMES = ("train", "heldout")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  n_active: int = 30  # activating contexts per split, spread over the quantile bins
  n_quantiles: int = 5
  n_near: int = 8  # near misses per split
  n_random: int = 16  # random non-activating contexts per split
  min_active: int = 3  # fewer activating contexts than this in either split: the feature is not exported
  seed: int = 0


def select_contexts(ctx_max_N: np.ndarray, threshold: float, heldout_N: np.ndarray, near_N: np.ndarray,
                    cfg: ExportConfig, rng: np.random.Generator) -> list[tuple[int, str, str]] | None:
  """(context, split, kind) for one feature, or None when a split has too few activating contexts.

  `near_N` marks contexts holding one of the feature's most frequent firing tokens (candidates for near misses).
  """
  out = []
  for split, in_split in zip(SPLIT_NAMES, (~heldout_N, heldout_N)):
    ids = np.flatnonzero(in_split)
    active = ids[ctx_max_N[ids] > threshold]
    if len(active) < cfg.min_active:
      return None
    ranked = active[np.argsort(-ctx_max_N[active], kind="stable")]
    bins = np.array_split(ranked, cfg.n_quantiles)
    per_bin = np.diff(np.linspace(0, cfg.n_active, cfg.n_quantiles + 1).round().astype(int))
    for q, (b, n) in enumerate(zip(bins, per_bin)):
      take = b[:n] if q == 0 else rng.permutation(b)[:n]
      out.extend((int(c), split, f"q{q}") for c in take)
    inactive = ids[ctx_max_N[ids] <= threshold]
    near = rng.permutation(inactive[near_N[inactive]])[:cfg.n_near]
    out.extend((int(c), split, "near_miss") for c in near)
    rest = np.setdiff1d(inactive, near)
    out.extend((int(c), split, "random") for c in rng.permutation(rest)[:cfg.n_random])
  return out


def top_firing_tokens(tokens_NxS: np.ndarray, act_NxS: np.ndarray, threshold: float, n: int = 3) -> list[int]:
  """The n token ids on which the feature fires most often."""
  fired = tokens_NxS[act_NxS > threshold]
  return [int(t) for t, _ in collections.Counter(fired.tolist()).most_common(n)]


def feature_records(name: str, act_NxS: np.ndarray, tokens_NxS: np.ndarray, token_strs: Sequence[str],
                    heldout_N: np.ndarray, threshold: float, cfg: ExportConfig, seed: int
                    ) -> list[dict[str, Any]] | None:
  """The JSONL records of one feature (see the module docstring), or None if it fires too rarely to describe."""
  ctx_max_N = act_NxS.max(axis=1)
  top = top_firing_tokens(tokens_NxS, act_NxS, threshold)
  near_N = np.isin(tokens_NxS, top).any(axis=1) if top else np.zeros(len(tokens_NxS), bool)
  chosen = select_contexts(ctx_max_N, threshold, heldout_N, near_N, cfg, np.random.default_rng([cfg.seed, seed]))
  if chosen is None:
    return None
  return [{"feature": name, "tokens": [token_strs[t] for t in tokens_NxS[c]],
           "activations": [round(float(a), 4) for a in act_NxS[c]], "split": split, "context": c, "kind": kind}
          for c, split, kind in chosen]


def latent_activations(idx_NxSxK: np.ndarray, val_NxSxK: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
  """Dense N x S activations of each latent that fires at least once, from the TopK codes (one sort, then slices)."""
  N, S, K = idx_NxSxK.shape
  flat = np.asarray(idx_NxSxK).reshape(-1).astype(np.int64)
  vals = np.asarray(val_NxSxK).reshape(-1).astype(np.float32)
  order = np.argsort(flat, kind="stable")
  ids, starts = np.unique(flat[order], return_index=True)
  ends = np.append(starts[1:], len(order))
  for j, s, e in zip(ids, starts, ends):
    pos = order[s:e]
    act = np.zeros(N * S, np.float32)
    np.maximum.at(act, pos // K, vals[pos])
    if act.max() > 0:
      yield int(j), act.reshape(N, S)


def write_feature(out_dir: str, records: list[dict[str, Any]]) -> None:
  path = os.path.join(out_dir, records[0]["feature"] + ".jsonl")
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    for r in records:
      f.write(json.dumps(r, ensure_ascii=False) + "\n")
  os.replace(path + ".tmp", path)
