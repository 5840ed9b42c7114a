"""The test-set features: the paper's four (animal, mammal, Chinese, number), the mammal feature with hard
negatives, and any WordNet noun category by name; what scripts/make_features.py writes.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from tokenlabel_jax.synthetic.concepts import Concept, build_concept, is_digit_run
from tokenlabel_jax.synthetic.records import Corpus, concept_records, make_record
from tokenlabel_jax.synthetic.text import cjk_activations, tokenize
from tokenlabel_jax.synthetic.wordnet import WordNet


def animal_concept(wn: WordNet) -> Concept:
  return build_concept(wn, "animal", [("animal", 1)])


def mammal_concept(wn: WordNet) -> Concept:
  # Off-topic negatives: no other animal may appear, so the feature cannot be told from "animal" by its negatives.
  return build_concept(wn, "mammal", [("mammal", 1)], exclude=[("animal", 1)])


# Animals that are plainly not mammals. Not "animal" minus "mammal": that leaves words such as beast, creature
# and calf (WordNet files young mammals under "young", not under "mammal"), which a reader would call mammals.
NON_MAMMAL_ROOTS = (("bird", 1), ("fish", 1), ("reptile", 1), ("amphibian", 3), ("invertebrate", 1))


def mammal_hardneg_concept(wn: WordNet) -> Concept:
  """Mammals, with birds, fish, reptiles, amphibians and invertebrates as zero-activation words in the text;
  any other animal word (beast, calf) is kept out, as in the mammal feature."""
  return build_concept(
      wn, "mammal_hardneg", [("mammal", 1)], exclude=[("animal", 1)], hard_negative=NON_MAMMAL_ROOTS
  )


NUMBER_ROOTS = (("integer", 1), ("digit", 1))


def number_concept(wn: WordNet) -> Concept:
  """Number words (WordNet's integers and digits) and digit runs; "two" counts though text uses it as adjective."""
  return build_concept(wn, "number", NUMBER_ROOTS, extra=is_digit_run, noun_check=False)


def animal(corpus: Corpus, seed: int = 0, n_records: int = 480) -> list[dict]:
  return concept_records(corpus, animal_concept(corpus.wn), seed, n_records)


def mammal(corpus: Corpus, seed: int = 0, n_records: int = 480) -> list[dict]:
  return concept_records(corpus, mammal_concept(corpus.wn), seed, n_records)


def mammal_hardneg(corpus: Corpus, seed: int = 0, n_records: int = 480) -> list[dict]:
  return concept_records(corpus, mammal_hardneg_concept(corpus.wn), seed, n_records)


def number(corpus: Corpus, seed: int = 0, n_records: int = 480) -> list[dict]:
  # Real text is rich in numbers, and a number word in a noun slot reads oddly, so most records are natural.
  return concept_records(corpus, number_concept(corpus.wn), seed, n_records, natural_frac=0.8)


def concept_feature(
    corpus: Corpus,
    root_lemma: str,
    sense: int,
    name: str | None = None,
    seed: int = 0,
    n_records: int = 480,
    proper: bool = False,
    noun_check: bool = True,
) -> list[dict]:
  """Records for any WordNet noun category, named by its lemma and sense number (e.g. "color", 1)."""
  concept = build_concept(
      corpus.wn, name or root_lemma, [(root_lemma, sense)], proper=proper, noun_check=noun_check
  )
  return concept_records(corpus, concept, seed, n_records)


def chinese(
    passages: Sequence[Sequence[str]],
    english: Sequence[str],
    seed: int = 0,
    n_records: int = 480,
    heldout_frac: float = 0.25,
    max_chars: int = 40,
) -> list[dict]:
  """Chinese text among English: tokens overlapping a CJK span are on.

  Kinds of record (in fixed proportions): a Chinese line spliced into an English sentence at a word boundary,
  an English sentence and a Chinese line side by side, a Chinese line on its own, a line that already mixes
  Chinese with ASCII words (fortunes-zh has some), and plain English. Chinese passages, not words, are split
  into train and held-out.
  """
  rng = np.random.default_rng(seed)
  heldout = set(rng.permutation(len(passages))[: int(round(heldout_frac * len(passages)))].tolist())
  lines = [(p, l[:max_chars]) for p, ls in enumerate(passages) for l in ls]
  mixed = [(p, l) for p, l in lines if re.search(r"[A-Za-z]{2,}", l)]
  pure = [(p, l) for p, l in lines if not re.search(r"[A-Za-z]", l)]
  records = []
  kinds = [("spliced", 0.35), ("side_by_side", 0.15), ("chinese", 0.1), ("mixed", 0.1), ("english", 0.3)]
  for kind, share in kinds:
    for _ in range(int(round(share * n_records))):
      sent = english[rng.integers(len(english))]
      if kind == "english":
        text, p = sent, None
      elif kind == "mixed" and mixed:
        p, text = mixed[rng.integers(len(mixed))]
      else:
        p, line = pure[rng.integers(len(pure))]
        if kind == "chinese":
          text = line
        elif kind == "side_by_side":
          text = f"{sent} {line}" if rng.random() < 0.5 else f"{line} {sent}"
        else:
          words = sent.split(" ")
          k = int(rng.integers(1, len(words)))
          text = " ".join(words[:k] + [line] + words[k:])
      tokens = tokenize(text, rng)
      if p is None:
        split = "heldout" if rng.random() < heldout_frac else "train"
      else:
        split = "heldout" if p in heldout else "train"
      records.append(make_record(tokens, cjk_activations(tokens), "chinese", split, source=kind))
  return records
