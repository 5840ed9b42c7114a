"""Records: a concept's activation records, made from real sentences and from sentences with a noun substituted.

Corpus holds the tokenized sentences and what substitution needs (noun slots, fillers, familiarity);
concept_records balances positives and negatives and splits them into train and held-out by word.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from tokenlabel_jax.synthetic.concepts import (AMBIGUOUS, NEUTRAL, POSITIVE, Concept, TokenJudge, _people,
                                               _plural_of_other)
from tokenlabel_jax.synthetic.text import tokenize
from tokenlabel_jax.synthetic.wordnet import WordNet

# Hard negatives (birds in the mammal feature) carry this weak activation, as related tokens do in real features:
# below a labeling threshold of 0.5 they are negatives, and `negatives="near_miss"` draws them first.
NEAR_MISS = 0.2


def split_words(words: Iterable[str], rng: np.random.Generator, heldout_frac: float = 0.25) -> frozenset[str]:
  """The held-out share of `words`, drawn by `rng` from their sorted order (so set order cannot matter)."""
  words = sorted(set(words))
  n = int(round(heldout_frac * len(words)))
  return frozenset(words[i] for i in rng.permutation(len(words))[:n])


def make_record(
    tokens: Sequence[str], activations: Sequence[float], feature: str, split: str, **extra
) -> dict:
  """One activation record in the library's JSONL format; `extra` adds optional fields."""
  if len(tokens) != len(activations):
    raise ValueError(f"{len(tokens)} tokens but {len(activations)} activations")
  rec = {"tokens": list(tokens), "activations": [float(a) for a in activations], "feature": feature, "split": split}
  rec.update({k: v for k, v in extra.items() if v is not None})
  return rec


def _shape_like(original: str, new: str) -> str:
  """`new` with the leading space and initial capital of the token it replaces."""
  space = " " if original.startswith(" ") else ""
  word = original.strip()
  return space + (new[:1].upper() + new[1:] if word[:1].isupper() else new)


@dataclasses.dataclass
class Corpus:
  """Tokenized English sentences plus what substitution needs to know about their words."""

  wn: WordNet
  sentences: list[list[str]]
  corpus_of: list[str]
  freq: collections.Counter
  _fillers: list[tuple[str, float]] | None = dataclasses.field(default=None, repr=False)
  _slots: list[list[tuple[int, str]]] | None = dataclasses.field(default=None, repr=False)

  @classmethod
  def build(cls, wn: WordNet, corpora: Mapping[str, Sequence[str]]) -> "Corpus":
    sentences, corpus_of = [], []
    for name in sorted(corpora):
      for s in corpora[name]:
        sentences.append(tokenize(s))
        corpus_of.append(name)
    freq = collections.Counter(t.strip().lower() for toks in sentences for t in toks)
    return cls(wn, sentences, corpus_of, freq)

  def common_words(self, n: int = 200) -> frozenset[str]:
    """The corpus's `n` most frequent lowercase tokens (at most 2% of its vocabulary, for tiny corpora):
    never substitution slots, and as positives suspect."""
    return frozenset(w for w, _ in self.freq.most_common(min(n, len(self.freq) // 50)))

  def familiarity(self, lemma: str) -> float:
    """How well known a noun is: tagged-text count, corpus count and number of senses, on log scales."""
    wn = self.wn
    return 2.0 * math.log1p(wn.noun_count[lemma]) + math.log1p(self.freq[lemma]) + math.log(1 + wn.polysemy(lemma))

  def slots(self) -> list[list[tuple[int, str]]]:
    """Per sentence, its noun slots as (token index, noun lemma)."""
    if self._slots is None:
      # Wider than common_words(): frequent words that WordNet knows only as nouns are often not (might, means).
      common = self.common_words(500)
      self._slots = []
      for toks in self.sentences:
        found = []
        for j, tok in enumerate(toks):
          lemma = _slot_lemma(self.wn, tok, common, j == 0)
          if lemma:
            found.append((j, lemma))
        self._slots.append(found)
    return self._slots

  def filler_pool(self) -> list[tuple[str, float]]:
    """Nouns that may fill a substituted negative's slot, with their familiarity: plain common nouns only.

    Words for people that neither tagged text nor the corpus ever uses are left out too: that is where
    WordNet's unmarked slurs hide.
    """
    if self._fillers is None:
      common = self.common_words()
      people = _people(self.wn)
      self._fillers = [
          (w, self.familiarity(w))
          for w in sorted(self.wn.noun_lemmas())
          if len(w) > 2
          and w.isascii()
          and w.isalpha()
          and w not in common
          and self.wn.noun_only(w)
          and self.wn.written_lowercase(w)
          and not self.wn.offensive(w)
          and (self.wn.noun_count[w] or self.freq[w] or self.wn.synsets_for(w)[0] not in people)
      ]
    return self._fillers


def _slot_lemma(wn: WordNet, token: str, common: frozenset[str], first: bool = False) -> str | None:
  """The noun if `token` is a plain noun slot to substitute into: a singular common noun-only word, not a name.

  Only singular slots: WordNet cannot tell count nouns from mass nouns, so a plural made for a substitute
  would often be wrong (blacknesses, cattles).
  """
  word = token.strip()
  if not word.isascii() or not word.isalpha() or len(word) < 3:
    return None
  if not (word.islower() or (first and word[1:].islower())):
    return None
  low = word.lower()
  if low in common or low in wn.verb_forms or wn.verb_stems(low) or not wn.noun_only(low):
    return None
  if _plural_of_other(wn, low) or not wn.written_lowercase(low):
    return None
  return low


@dataclasses.dataclass
class _Scan:
  """A sentence judged for one concept."""

  index: int
  statuses: list[int]
  lemmas: list[str | None]

  positives: frozenset[str] = frozenset()
  hard: frozenset[str] = frozenset()

  def __post_init__(self):
    self.positives = frozenset(l for s, l in zip(self.statuses, self.lemmas) if s == POSITIVE)
    self.hard = frozenset(l for s, l in zip(self.statuses, self.lemmas) if s == NEUTRAL and l)


def concept_records(
    corpus: Corpus,
    concept: Concept,
    seed: int,
    n_records: int = 480,
    heldout_frac: float = 0.25,
    natural_frac: float = 0.5,
    max_tokens: int = 48,
) -> list[dict]:
  """Records for a concept: half positive, half negative; of each half, real sentences and substituted ones.

  Natural positives are real sentences holding positive words (one sentence per word in turn, so frequent words
  do not crowd out rare ones). Substituted positives put a sampled positive word into a noun slot of a real
  sentence; substituted negatives put there a noun outside the concept of similar familiarity. Every record
  avoids ambiguous words. A record is "heldout" iff its positive words are held-out words; records mixing train
  and held-out words are dropped, and records without positives are split at random.
  """
  rng = np.random.default_rng(seed)
  wn = corpus.wn
  common = corpus.common_words()
  judge = TokenJudge(wn, concept, function_words={w for w in common if wn.noun_count[w] < 5})

  scans = []
  found: set[str] = set()
  for i, toks in enumerate(corpus.sentences):
    if len(toks) > max_tokens:
      continue
    judged = judge.sentence(toks)
    if any(s == AMBIGUOUS for s, _ in judged):
      continue
    scan = _Scan(i, [s for s, _ in judged], [l for _, l in judged])
    scans.append(scan)
    found |= scan.positives
  # Words only the extra test knows (digit runs) join the split too.
  heldout = split_words(set(concept.positives) | found, rng, heldout_frac)

  n_pos = n_records // 2
  n_neg = n_records - n_pos
  n_nat_pos = int(round(n_pos * natural_frac))
  records: list[dict] = []

  def split_of(words: set[str]) -> str | None:
    held = {w in heldout for w in words}
    if not words:
      return "heldout" if rng.random() < heldout_frac else "train"
    return None if len(held) > 1 else ("heldout" if held.pop() else "train")

  def emit(scan: _Scan, tokens: list[str], statuses: list[int], lemmas: list[str | None], source: str) -> bool:
    pos_words = {l for s, l in zip(statuses, lemmas) if s == POSITIVE}
    split = split_of(pos_words)
    if split is None:
      return False
    hard = sorted({l for s, l in zip(statuses, lemmas) if s == NEUTRAL and l})
    records.append(
        make_record(
            tokens,
            [1.0 if s == POSITIVE else (NEAR_MISS if s == NEUTRAL and l else 0.0)
             for s, l in zip(statuses, lemmas)],
            concept.name,
            split,
            concept_word=next(iter(pos_words)) if len(pos_words) == 1 else None,
            source=source,
            corpus=corpus.corpus_of[scan.index],
            hard_negatives=hard or None,
        )
    )
    return True

  # Natural positives: round-robin over positive words in a seeded order.
  by_word: dict[str, list[_Scan]] = collections.defaultdict(list)
  for scan in scans:
    pw = scan.positives
    if pw:
      by_word[min(pw)].append(scan)
  words = sorted(by_word)
  order = [words[i] for i in rng.permutation(len(words))]
  queues = {w: [by_word[w][i] for i in rng.permutation(len(by_word[w]))] for w in words}
  taken = 0
  while taken < n_nat_pos and any(queues.values()):
    for w in order:
      if taken >= n_nat_pos:
        break
      if queues[w]:
        s = queues[w].pop()
        if emit(s, corpus.sentences[s.index], s.statuses, s.lemmas, "natural"):
          taken += 1

  # Substitution material: negative sentences with a noun slot; nouns outside the concept by familiarity.
  neutral = [s for s in scans if not s.positives]
  hard_sents = [s for s in neutral if s.hard]
  slotted = []
  all_slots = corpus.slots()
  for s in neutral:
    slots = [(j, l) for j, l in all_slots[s.index] if s.statuses[j] == NEUTRAL and not s.lemmas[j]]
    if slots:
      slotted.append((s, slots))
  pos_list = sorted(concept.positives)
  # Favour familiar positives (a labeler should know what the words mean) without dropping the rare ones.
  pos_weight = np.array([math.exp(0.35 * corpus.familiarity(p.lower())) for p in pos_list])
  pos_weight /= pos_weight.sum()
  excluded = concept.ambiguous | concept.hard_negatives | {p.lower() for p in concept.positives}
  pool = [(w, f) for w, f in corpus.filler_pool() if w not in excluded]
  fillers = [w for w, _ in pool]
  filler_fam = np.array([f for _, f in pool])
  filler_order = np.argsort(filler_fam, kind="stable")
  sorted_fam = filler_fam[filler_order]
  hard_list = sorted(concept.hard_negatives)

  def substitute(new_word_for: Callable[[], tuple[str, int, str | None]], source: str) -> bool:
    s, slots = slotted[rng.integers(len(slotted))]
    j, lemma = slots[rng.integers(len(slots))]
    word, status, tag = new_word_for()
    toks = list(corpus.sentences[s.index])
    toks[j] = _shape_like(toks[j], word)
    statuses, lemmas = list(s.statuses), list(s.lemmas)
    statuses[j], lemmas[j] = status, tag
    return emit(s, toks, statuses, lemmas, source)

  def sample_positive() -> tuple[str, int, str | None]:
    p = pos_list[rng.choice(len(pos_list), p=pos_weight)]
    return p, POSITIVE, p

  def sample_filler() -> tuple[str, int, str | None]:
    # A filler as familiar as a sampled positive: any within half a unit, else one of the 40 nearest.
    target = corpus.familiarity(pos_list[rng.choice(len(pos_list), p=pos_weight)].lower())
    lo = int(np.searchsorted(sorted_fam, target - 0.5, "left"))
    hi = int(np.searchsorted(sorted_fam, target + 0.5, "right"))
    if hi - lo < 10:
      k = int(np.searchsorted(sorted_fam, target))
      lo, hi = max(0, k - 20), min(len(fillers), k + 20)
    return fillers[filler_order[rng.integers(lo, hi)]], NEUTRAL, None

  def sample_hard() -> tuple[str, int, str | None]:
    h = hard_list[rng.integers(len(hard_list))]
    return h, NEUTRAL, h

  tries = 0
  while len(records) < n_pos and slotted and tries < 20 * n_pos:
    tries += 1
    substitute(sample_positive, "substituted")
  n_pos_made = len(records)

  # Negatives: real sentences without the concept, and substituted ones. With hard negatives, the real ones
  # all hold a hard-negative word (as far as the corpus has them) and half the substituted ones get one.
  n_nat_neg = int(round(n_neg * natural_frac))
  if hard_list:
    for i in rng.permutation(len(hard_sents))[:n_nat_neg]:
      s = hard_sents[i]
      emit(s, corpus.sentences[s.index], s.statuses, s.lemmas, "natural")
  for i in rng.permutation(len(neutral)):
    if len(records) >= n_pos_made + n_nat_neg:
      break
    s = neutral[i]
    if s.hard:
      continue
    emit(s, corpus.sentences[s.index], s.statuses, s.lemmas, "natural")
  tries = 0
  while len(records) < n_pos_made + n_neg and slotted and tries < 20 * n_neg:
    tries += 1
    use_hard = hard_list and rng.random() < 0.5
    substitute(sample_hard if use_hard else sample_filler, "substituted")
  return records
