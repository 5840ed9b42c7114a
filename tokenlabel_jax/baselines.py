"""The labels a researcher tries first, scored beside every label on the same held-out examples.

The top token is the word at the feature's strongest peaks, what a dashboard shows first; a random word-like token is
what chance looks like under this discriminator, which need not be 0.5 (the judge's answer depends on the marked
token as well as on the label: a random word reached 0.58 on real latents). A label that does not beat them says
little, whatever its AUC.
"""

from __future__ import annotations

import collections
import hashlib

import numpy as np

from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib


def top_token(feature: data_lib.Feature, threshold: float, n_top: int = 20, accept=None) -> str | None:
  """The most frequent token (as a word) at the peaks of the feature's `n_top` strongest training records, among the
  words `accept` allows (default: all); None when there is none."""
  feature = data_lib.assign_splits(feature, threshold=threshold)
  recs = sorted((r for r in feature.records if r.split == "train"), key=lambda r: -float(r.activations.max()))
  words = [data_lib.word_of(r.tokens[int(np.argmax(r.activations))]) or r.tokens[int(np.argmax(r.activations))]
           for r in recs[:n_top] if r.activations.max() > threshold]
  words = [w for w in words if accept is None or accept(w)]
  return collections.Counter(words).most_common(1)[0][0] if words else None


def positive_word_counts(feature: data_lib.Feature, threshold: float) -> collections.Counter:
  """How often each word (as `top_token` reads a token) is a positive token of the feature's training records."""
  feature = data_lib.assign_splits(feature, threshold=threshold)
  return collections.Counter(data_lib.word_of(t) or t for r in feature.records if r.split == "train"
                             for t, a in zip(r.tokens, r.activations) if a > threshold)


def words_for_half(counts: collections.Counter) -> int:
  """How many of the commonest words make up half of the occurrences (0 for none)."""
  total, run = sum(counts.values()), 0
  for n, (_, c) in enumerate(counts.most_common(), 1):
    run += c
    if 2 * run >= total:
      return n
  return 0


def word_spread(feature: data_lib.Feature, threshold: float, n: int = 8) -> dict:
  """The commonest words at the feature's positive tokens with their shares, and how many words make up half: a
  feature spread over many words is one that a one-word label (or the top token) can only summarize. On the embedded
  SAE's latents the top word carries a median 15% and 7 words make half (experiments/real_features/dominance.py)."""
  counts = positive_word_counts(feature, threshold)
  total = sum(counts.values())
  return {"occurrences": total, "words_for_half": words_for_half(counts),
          "top": [[w, c / total] for w, c in counts.most_common(n)]}


def random_word(tokenizer, vocab_size: int, name: str, seed: int = 0) -> int | None:
  """A word-like token drawn by the feature's name and the run's seed: the same for a feature in any batch (None for a
  vocabulary without word-like tokens)."""
  words = np.flatnonzero(disc_lib.word_like_mask(tokenizer, vocab_size))
  if not len(words):
    return None
  digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
  return int(words[int.from_bytes(digest[:8], "little") % len(words)])


def labels(m, feature: data_lib.Feature, threshold: float, seed: int, multi_token: bool
           ) -> dict[str, tuple[str, list[int]]]:
  """{"top_token": (text, ids), "random_word": (text, ids)} as the discriminator reads them. `multi_token`: whether
  the run's prompts can score a label of several tokens. A namer run without prefix caches cannot: its top token is
  then the commonest peak word of one token, rather than every prompt keeping its cache for one label."""
  out = {}
  one = None if multi_token else (lambda w: len(disc_lib.encode_label(m.tokenizer, w)) == 1)
  top = top_token(feature, threshold, accept=one)
  if top is not None:
    out["top_token"] = (top, list(disc_lib.encode_label(m.tokenizer, top)))
  t = random_word(m.tokenizer, m.cfg.vocab_size, feature.name, seed)
  if t is not None:
    out["random_word"] = (m.tokenizer.token_str(t), [t])
  return out
