"""Concepts: which tokens are instances of a WordNet category.

A Concept is the word-level truth of a feature (positive, ambiguous and hard-negative lemmas); TokenJudge applies
it to the tokens of a sentence. Kept apart from records so the truth can be checked without building any corpus.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, Iterable, Sequence

from tokenlabel_jax.synthetic.wordnet import WordNet

POSITIVE, NEUTRAL, AMBIGUOUS = 1, 0, -1


def _alpha_word(w: str) -> bool:
  return w.isascii() and w.isalpha()


def is_common_lemma(word: str) -> bool:
  """A single-word, lowercase, alphabetic lemma as data.noun writes it (proper names and symbols are not)."""
  return _alpha_word(word) and word.islower()


def is_proper_lemma(word: str) -> bool:
  """A single-word capitalised name (France, Paris); acronyms and symbols (USA, Fe) are not."""
  return _alpha_word(word) and len(word) > 2 and word[0].isupper() and word[1:].islower()


@dataclasses.dataclass
class Concept:
  """The word-level truth of a category: which lemmas are positives and which are only maybe (ambiguous).

  positives: lemmas whose dominant noun sense lies in the category (and that text mostly uses as nouns).
  ambiguous: other lemmas with some sense in the category, or in `exclude` (a wider category whose words
    must not turn up unlabeled, e.g. any animal in the mammal feature); records avoid them.
  hard_negatives: words of a related category that may occur with activation 0 (birds in the mammal feature).
  proper: the positives are capitalised names, matched case-sensitively and never as plurals.
  extra: an extra positive test on the bare token (digit runs for numbers).
  """

  name: str
  positives: frozenset[str]
  ambiguous: frozenset[str]
  hard_negatives: frozenset[str] = frozenset()
  proper: bool = False
  extra: Callable[[str], bool] | None = None
  roots: tuple[int, ...] = ()


def concept_lemmas(
    wn: WordNet, roots: Sequence[int], proper: bool = False, noun_check: bool = True
) -> tuple[set[str], set[str]]:
  """(positives, ambiguous) lemma sets of the categories under `roots` (lowercase; names keep their case).

  A positive has its dominant noun sense in the category and, with `noun_check`, is mostly used as a noun.
  Ambiguous lemmas have some other sense there, fail the noun check, are a verb's irregular form (sang,
  shook), a plural of another noun (bones, stays), a name that is also a person's (London) or an insult. Only
  lemmas of the positives' kind count, so the symbol "I" (one) does not make the word "i" ambiguous.
  """
  closure = frozenset().union(*(wn.hyponym_closure(r) for r in roots))
  keep = is_proper_lemma if proper else is_common_lemma
  positives, ambiguous = set(), set()
  for offset in closure:
    for word in wn.lemmas(offset):
      if not keep(word):
        continue
      key = word.lower()
      senses = wn.synsets_for(key)
      if (
          senses
          and senses[0] in closure
          and (proper or not noun_check or wn.mostly_noun(key))
          and (proper or (key not in wn.verb_forms and not _plural_of_other(wn, key)))
          and not (proper and _names_a_person(wn, key))
          and not wn.offensive(key)
      ):
        positives.add(word if proper else key)
      else:
        ambiguous.add(key)
  ambiguous -= {p.lower() for p in positives}
  return positives, ambiguous


def _people(wn: WordNet) -> frozenset[int]:
  """Every synset under person.n.01 (names of people included); empty for a WordNet without "person"."""
  return wn.hyponym_closure(wn.sense("person", 1)) if wn.synsets_for("person") else frozenset()


def _names_a_person(wn: WordNet, lemma: str) -> bool:
  """True if some sense of the name is a person (London: Jack London), so a text's "London" may be one."""
  people = _people(wn)
  return any(o in people for o in wn.synsets_for(lemma))


def _plural_of_other(wn: WordNet, lemma: str) -> bool:
  """True if the lemma reads as the plural of another noun (bones: bone), which is what text mostly means."""
  singulars = [wn.noun_exc.get(lemma)]
  if lemma.endswith("s") and not lemma.endswith("ss"):
    singulars += [lemma[:-1], lemma[:-2] if lemma.endswith("es") else None]
  return any(s and s != lemma and wn.is_noun(s) for s in singulars)


def build_concept(
    wn: WordNet,
    name: str,
    roots: Sequence[tuple[str, int]],
    exclude: Sequence[tuple[str, int]] = (),
    hard_negative: Sequence[tuple[str, int]] = (),
    proper: bool = False,
    extra: Callable[[str], bool] | None = None,
    noun_check: bool = True,
    siblings: bool = False,
) -> Concept:
  """A Concept from (lemma, sense number) roots, e.g. [("animal", 1)]. Hard negatives: the words of the
  `hard_negative` roots and, with `siblings`, of the roots' siblings (`WordNet.siblings`)."""
  root_offsets = tuple(wn.sense(l, s) for l, s in roots)
  positives, ambiguous = concept_lemmas(wn, root_offsets, proper, noun_check)
  lowered = {p.lower() for p in positives}
  hard = set()
  hard_roots = [wn.sense(l, s) for l, s in hard_negative]
  if siblings:
    hard_roots += [s for r in root_offsets for s in wn.siblings(r) if s not in hard_roots]
  if hard_roots:
    hard_pos, _ = concept_lemmas(wn, hard_roots, proper)
    hard = {w for w in hard_pos if w not in lowered and w not in ambiguous}
  if exclude:
    ex_pos, ex_amb = concept_lemmas(wn, [wn.sense(l, s) for l, s in exclude])
    ambiguous |= (ex_pos | ex_amb) - lowered - hard
  return Concept(name, frozenset(positives), frozenset(ambiguous), frozenset(hard), proper, extra, root_offsets)


def lemma_candidates(wn: WordNet, word: str) -> list[str]:
  """The lemma a lowercase word token is: itself if WordNet knows it, else its singular, else itself.

  Singulars: WordNet's irregular plurals (mice), then -s (cures: cure, not cur), -ies (flies), and -es after
  s, x, z, ch, sh or o (foxes, potatoes). A verb's -es form (does, goes) is the verb, not a plural (doe).
  """
  if wn.is_word(word) or word in wn.verb_forms:
    return [word]
  if word.endswith("es") and wn.is_verb(word[:-2]) and not wn.mostly_noun(word[:-2]):
    return [word[:-2]]
  if word in wn.noun_exc:
    return [wn.noun_exc[word]]
  if word.endswith("s") and not word.endswith("ss") and wn.is_noun(word[:-1]):
    return [word[:-1]]
  if word.endswith("ies") and wn.is_noun(word[:-3] + "y"):
    return [word[:-3] + "y"]
  if word.endswith("es") and re.search(r"(s|x|z|ch|sh|o)$", word[:-2]) and wn.is_noun(word[:-2]):
    return [word[:-2]]
  return [word]


class TokenJudge:
  """Labels tokens for one concept, caching per distinct (token, sentence-initial) pair.

  `function_words` are positives that text mostly uses otherwise (KJV's "thou" is WordNet's thousand); they
  are treated as ambiguous. A common-noun positive written with a capital anywhere but at the start of a
  sentence (GNU, Fox) is a name and also ambiguous.
  """

  def __init__(self, wn: WordNet, concept: Concept, function_words: Iterable[str] = ()):
    self.wn, self.concept = wn, concept
    self.function_words = frozenset(function_words)
    self._cache: dict[tuple[str, bool], tuple[int, str | None]] = {}

  def __call__(self, token: str, first: bool = False) -> tuple[int, str | None]:
    """(POSITIVE / NEUTRAL / AMBIGUOUS, the positive lemma or hard-negative lemma or None)."""
    key = (token, first)
    hit = self._cache.get(key)
    if hit is None:
      hit = self._cache[key] = self._judge(token.strip(), first)
    return hit

  def sentence(self, tokens: Sequence[str]) -> list[tuple[int, str | None]]:
    """Judges every token; a name next to another capitalised word may be part of a longer name
    (Pierre Trudeau, Jack London), so it is ambiguous."""
    out = [self(t, i == 0) for i, t in enumerate(tokens)]
    if self.concept.proper:
      capital = [t.strip()[:1].isupper() and t.strip().isalpha() for t in tokens]
      for i, (status, _) in enumerate(out):
        if status == POSITIVE and ((i > 1 and capital[i - 1]) or (i + 1 < len(tokens) and capital[i + 1])):
          out[i] = (AMBIGUOUS, None)
    return out

  def _judge(self, word: str, first: bool) -> tuple[int, str | None]:
    c = self.concept
    if c.extra is not None and c.extra(word):
      return POSITIVE, word
    if not _alpha_word(word.replace("'", "")):
      return NEUTRAL, None
    if c.proper:
      if word in c.positives:
        # At the start of a sentence "Nice" or "Reading" may just be a capitalised word.
        if first and self.wn.is_word(word.lower()):
          return AMBIGUOUS, None
        return POSITIVE, word
      return (AMBIGUOUS, None) if word.lower() in c.ambiguous else (NEUTRAL, None)
    cased_ok = word.islower() or (first and word[1:].islower())
    status, lemma = NEUTRAL, None
    for cand in lemma_candidates(self.wn, word.lower()):
      if cand in c.positives:
        if not cased_ok or cand in self.function_words:
          return AMBIGUOUS, None
        return POSITIVE, cand
      if cand in c.ambiguous:
        status = AMBIGUOUS
      elif cand in c.hard_negatives and status == NEUTRAL:
        lemma = cand
    return status, lemma


def is_digit_run(word: str) -> bool:
  return word.isascii() and word.isdigit()
