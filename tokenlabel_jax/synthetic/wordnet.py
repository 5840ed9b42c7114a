"""The WordNet 3.0 database reader (the wndb format: data.noun, index.noun, cntlist.rev, *.exc).

Concepts are WordNet noun categories; this module reads the database files directly (no nltk), so it depends on
nothing but the files Debian's wordnet-base installs.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from typing import Iterable

WORDNET_DIR = "/usr/share/wordnet"

HYPERNYM, HYPONYM = "@", "~"
USAGE_DOMAIN = ";u"
# Usage domains that mark a word as an insult; such words are never sampled into records.
OFFENSIVE_USAGE = ("ethnic_slur", "disparagement", "obscenity")
INSTANCE_HYPERNYM, INSTANCE_HYPONYM = "@i", "~i"
_OTHER_POS = ("verb", "adj", "adv")
# cntlist.rev sense keys encode the part of speech as a digit: 1 noun, 2 verb, 3 adjective, 4 adverb, 5 satellite.
_NOUN_SS_TYPE = "1"


@dataclasses.dataclass(frozen=True)
class Pointer:
  """One relation from a synset: `symbol` (e.g. "@" hypernym) to the synset at `offset` of part of speech `pos`."""

  symbol: str
  offset: int
  pos: str
  source_target: str


@dataclasses.dataclass(frozen=True)
class Synset:
  """One line of a data.* file: a set of synonymous words, its relations and its gloss."""

  offset: int
  lex_filenum: int
  ss_type: str
  words: tuple[str, ...]
  lex_ids: tuple[int, ...]
  pointers: tuple[Pointer, ...]
  gloss: str

  def targets(self, *symbols: str) -> list[int]:
    """Offsets of the noun synsets this one points to with any of `symbols`."""
    return [p.offset for p in self.pointers if p.symbol in symbols and p.pos == "n"]


def parse_data_line(line: str) -> Synset:
  """Parses one synset line; fields are space separated, counts are hex (w_cnt) or decimal (p_cnt)."""
  body, _, gloss = line.partition(" | ")
  f = body.split()
  offset, lex_filenum, ss_type = int(f[0]), int(f[1]), f[2]
  w_cnt = int(f[3], 16)
  words = tuple(f[4 + 2 * i] for i in range(w_cnt))
  lex_ids = tuple(int(f[5 + 2 * i], 16) for i in range(w_cnt))
  i = 4 + 2 * w_cnt
  p_cnt = int(f[i])
  pointers = tuple(
      Pointer(f[i + 1 + 4 * k], int(f[i + 2 + 4 * k]), f[i + 3 + 4 * k], f[i + 4 + 4 * k]) for k in range(p_cnt)
  )
  return Synset(offset, lex_filenum, ss_type, words, lex_ids, pointers, gloss.strip())


def parse_index_line(line: str) -> tuple[str, str, tuple[int, ...]]:
  """Parses one index line into (lemma, pos, synset offsets in sense order: sense 1 first)."""
  f = line.split()
  lemma, pos, synset_cnt, p_cnt = f[0], f[1], int(f[2]), int(f[3])
  # After the lemma's pointer symbols come sense_cnt and tagsense_cnt, then the offsets.
  offsets = tuple(int(x) for x in f[4 + p_cnt + 2:4 + p_cnt + 2 + synset_cnt])
  return lemma, pos, offsets


def _license_line(line: str) -> bool:
  """The wndb files open with license text, every line of which starts with two spaces."""
  return line.startswith("  ")


class WordNet:
  """The noun database of a WordNet 3.0 directory, plus what the other parts of speech say about noun-ness.

  data.noun is held in memory as bytes and read by offset (a synset's offset is its byte offset in the file), so
  only the synsets a feature touches are ever parsed.
  """

  def __init__(self, root: str | os.PathLike = WORDNET_DIR):
    self.root = os.fspath(root)
    with open(os.path.join(self.root, "data.noun"), "rb") as f:
      self._data = f.read()
    self._index: dict[str, tuple[int, ...]] = {}
    for line in _read_lines(os.path.join(self.root, "index.noun")):
      if line and not _license_line(line):
        lemma, _, offsets = parse_index_line(line)
        self._index[lemma] = offsets
    self._other_pos: dict[str, set[str]] = {}
    for pos in _OTHER_POS:
      lemmas = set()
      for line in _read_lines(os.path.join(self.root, f"index.{pos}"), missing_ok=True):
        if line and not _license_line(line):
          lemmas.add(line.split(" ", 1)[0])
      self._other_pos[pos] = lemmas
    # Tag counts from the semantic concordance: how often each lemma was seen as a noun / as anything else.
    self.noun_count: collections.Counter[str] = collections.Counter()
    self.other_count: collections.Counter[str] = collections.Counter()
    for line in _read_lines(os.path.join(self.root, "cntlist.rev"), missing_ok=True):
      parts = line.split()
      if len(parts) == 3:
        lemma, _, rest = parts[0].partition("%")
        (self.noun_count if rest[:1] == _NOUN_SS_TYPE else self.other_count)[lemma] += int(parts[2])
    # Irregular noun plurals (mice -> mouse), and irregular verb forms, which must never be read as plurals.
    self.noun_exc = _read_exc(os.path.join(self.root, "noun.exc"))
    self.verb_forms = set(_read_exc(os.path.join(self.root, "verb.exc")))
    self._synsets: dict[int, Synset] = {}
    self._closures: dict[tuple[int, bool], frozenset[int]] = {}

  def synset(self, offset: int) -> Synset:
    """The synset at byte `offset` of data.noun."""
    s = self._synsets.get(offset)
    if s is None:
      end = self._data.index(b"\n", offset)
      s = parse_data_line(self._data[offset:end].decode("utf-8"))
      if s.offset != offset:
        raise ValueError(f"data.noun: no synset starts at byte {offset}")
      self._synsets[offset] = s
    return s

  def lemmas(self, offset: int) -> list[str]:
    """The words of a synset as written in data.noun (case kept, underscores between the words of a phrase)."""
    return list(self.synset(offset).words)

  def synsets_for(self, lemma: str) -> tuple[int, ...]:
    """Noun synsets of `lemma` in sense order (index.noun lists them by tagged frequency, sense 1 first)."""
    return self._index.get(lemma.lower().replace(" ", "_"), ())

  def sense(self, lemma: str, number: int) -> int:
    """Offset of sense `number` (1-based) of noun `lemma`: a stable way to name a synset, like WordNet's dog.n.01."""
    offsets = self.synsets_for(lemma)
    if not 1 <= number <= len(offsets):
      raise KeyError(f"WordNet has no noun sense {number} of {lemma!r} ({len(offsets)} senses)")
    return offsets[number - 1]

  def hyponym_closure(self, offset: int, instances: bool = True) -> frozenset[int]:
    """`offset` and every synset below it through hyponym (and, if asked, instance hyponym) links."""
    key = (offset, instances)
    if key not in self._closures:
      symbols = (HYPONYM, INSTANCE_HYPONYM) if instances else (HYPONYM,)
      seen, stack = {offset}, [offset]
      while stack:
        for child in self.synset(stack.pop()).targets(*symbols):
          if child not in seen:
            seen.add(child)
            stack.append(child)
      self._closures[key] = frozenset(seen)
    return self._closures[key]

  def hypernym_closure(self, offset: int) -> frozenset[int]:
    """`offset` and every synset above it; used to check what a sense is, e.g. in reports and tests."""
    seen, stack = {offset}, [offset]
    while stack:
      for parent in self.synset(stack.pop()).targets(HYPERNYM, INSTANCE_HYPERNYM):
        if parent not in seen:
          seen.add(parent)
          stack.append(parent)
    return frozenset(seen)

  def siblings(self, offset: int) -> list[int]:
    """The other children of `offset`'s direct hypernyms, less any with `offset` below it: a category's neighbours
    (other birds beside ducks), whose words are a feature's near misses."""
    out = []
    for parent in self.synset(offset).targets(HYPERNYM, INSTANCE_HYPERNYM):
      for child in self.synset(parent).targets(HYPONYM, INSTANCE_HYPONYM):
        if child != offset and child not in out and offset not in self.hyponym_closure(child):
          out.append(child)
    return out

  def dominant_sense_in(self, lemma: str, root_offset: int) -> bool:
    """True if the lemma's first (most frequent) noun sense lies under `root_offset`."""
    offsets = self.synsets_for(lemma)
    return bool(offsets) and offsets[0] in self.hyponym_closure(root_offset)

  def any_sense_in(self, lemma: str, root_offset: int) -> bool:
    """True if any noun sense of the lemma lies under `root_offset`: such a word may mean the concept."""
    closure = self.hyponym_closure(root_offset)
    return any(o in closure for o in self.synsets_for(lemma))

  def is_noun(self, lemma: str) -> bool:
    return lemma in self._index

  def offensive(self, lemma: str) -> bool:
    """True if a sense of the lemma is marked as an ethnic slur, disparagement or obscenity."""
    for o in self.synsets_for(lemma):
      for target in self.synset(o).targets(USAGE_DOMAIN):
        if self.synset(target).words[0] in OFFENSIVE_USAGE:
          return True
    return False

  def written_lowercase(self, lemma: str) -> bool:
    """True if some synset writes the lemma in lowercase: a common noun, not only a name (index.noun lowercases)."""
    return any(lemma in self.synset(o).words for o in self.synsets_for(lemma))

  def noun_only(self, lemma: str) -> bool:
    """True if the lemma is a noun and nothing else, so a sentence slot holding it holds a noun."""
    return lemma in self._index and not any(lemma in self._other_pos[p] for p in _OTHER_POS)

  def verb_stems(self, word: str) -> list[str]:
    """The verbs an -ing or -ed form may come from (riding: ride, running: run), as WordNet lists them."""
    for suffix in ("ing", "ed"):
      if word.endswith(suffix) and len(word) > len(suffix) + 2:
        stem = word[: -len(suffix)]
        stems = [stem, stem + "e"] + ([stem[:-1]] if stem[-1:] == stem[-2:-1] else [])
        return [v for v in stems if self.is_verb(v)]
    return []

  def mostly_noun(self, lemma: str) -> bool:
    """True unless tagged text saw the lemma more often as a verb, adjective or adverb (fly, young, bear).

    An -ing or -ed noun (riding, hunting) counts its verb's uses too: text mostly writes it as the verb form.
    """
    other = self.other_count[lemma] + sum(self.other_count[v] for v in self.verb_stems(lemma))
    return self.noun_count[lemma] >= other

  def is_verb(self, lemma: str) -> bool:
    return lemma in self._other_pos["verb"]

  def is_word(self, lemma: str) -> bool:
    """True if the lemma is in any part of speech's index."""
    return lemma in self._index or any(lemma in self._other_pos[p] for p in _OTHER_POS)

  def noun_lemmas(self) -> Iterable[str]:
    return self._index.keys()

  def polysemy(self, lemma: str) -> int:
    return len(self._index.get(lemma, ()))


def _read_lines(path: str, missing_ok: bool = False) -> list[str]:
  if missing_ok and not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    return f.read().splitlines()


def _read_exc(path: str) -> dict[str, str]:
  """An exception list: inflected form -> its first base form."""
  exc = {}
  for line in _read_lines(path, missing_ok=True):
    parts = line.split()
    if len(parts) >= 2:
      exc.setdefault(parts[0], parts[1])
  return exc
