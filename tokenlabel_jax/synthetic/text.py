"""Text: reading the corpora (fortunes, the KJV bible, Chinese fortunes), splitting sentences, word-level tokens.

The English sentences are what records are made of and the Chinese lines are the Chinese feature's positives; both
reach records as word-level tokens (GPT-2-style leading spaces), cut here.
"""

from __future__ import annotations

import os
import re
from typing import Iterable, Sequence

import numpy as np

FORTUNES_DIR = "/usr/share/games/fortunes"
# Fortune files that are Chinese (fortunes-zh) or pictures rather than English prose.
CHINESE_FORTUNES = ("chinese", "tang300", "song100")
NON_PROSE_FORTUNES = ("ascii-art", "translate-me") + CHINESE_FORTUNES

_CJK_CHARS = (
    "\u3000-\u303f"  # CJK symbols and punctuation
    "\u3040-\u30ff"  # kana
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff00-\uffef"  # full- and half-width forms
    "\U00020000-\U0002fa1f"  # CJK extensions B and later
)
_CJK_RUN = re.compile(f"[{_CJK_CHARS}]+")
_TOKEN = re.compile(
    rf"(\s*)(?:([{_CJK_CHARS}]+)|([A-Za-z\u00c0-\u024f]+(?:'[A-Za-z\u00c0-\u024f]+)*|[0-9]+|\S))"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z])")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
_PROSE_CHARS = re.compile(r"[A-Za-z0-9 .,;:!?'\"()\-]+")


def tokenize(text: str, rng: np.random.Generator | None = None) -> list[str]:
  """Word-level tokens, each carrying the whitespace before it as one leading space (GPT-2 style).

  Words, digit runs and single punctuation marks are tokens; a CJK run is cut into chunks of one or two
  characters (of random length if `rng` is given, else pairs), as subword vocabularies do with Chinese.
  """
  tokens = []
  for m in _TOKEN.finditer(text):
    space = " " if m.group(1) else ""
    if m.group(2):
      run, i = m.group(2), 0
      while i < len(run):
        n = 2 if rng is None else int(rng.integers(1, 3))
        tokens.append((space if i == 0 else "") + run[i:i + n])
        i += n
    else:
      tokens.append(space + m.group(3))
  if tokens and tokens[0].startswith(" "):
    tokens[0] = tokens[0][1:]
  return tokens


def cjk_spans(text: str) -> list[tuple[int, int]]:
  """[start, end) character spans of the maximal CJK runs in `text`."""
  return [m.span() for m in _CJK_RUN.finditer(text)]


def overlap_activations(tokens: Sequence[str], spans: Sequence[tuple[int, int]]) -> list[float]:
  """1.0 for each token whose characters in "".join(tokens) overlap any span, else 0.0."""
  out, pos = [], 0
  for tok in tokens:
    start, end = pos, pos + len(tok)
    out.append(1.0 if any(s < end and start < e for s, e in spans) else 0.0)
    pos = end
  return out


def cjk_activations(tokens: Sequence[str]) -> list[float]:
  """The Chinese feature's truth: a token is on iff it overlaps a CJK span of the text the tokens spell."""
  return overlap_activations(tokens, cjk_spans("".join(tokens)))


def read_fortunes(path: str) -> list[str]:
  """The entries of a fortune file (separated by lines holding only "%"), colour escapes removed."""
  with open(path, encoding="utf-8", errors="replace") as f:
    text = _ANSI.sub("", f.read())
  return [e.strip("\n") for e in re.split(r"^%\s*$", text, flags=re.M) if e.strip()]


def parse_kjv(text: str) -> list[str]:
  """Verses from the output of the bible-kjv program (`bible -l1000 gen1:1-rev22:21`): lines "  N text"."""
  verses = []
  for line in text.splitlines():
    m = re.match(r"\s+\d+ (.*\S)", line)
    if m:
      verses.append(m.group(1))
  return verses


def _is_prose_entry(entry: str) -> bool:
  """Rejects fortunes that are pictures, code, tables or dialogue layouts rather than running text."""
  for line in entry.splitlines():
    body = line.strip()
    if "\t" in body or "   " in body or re.search(r"[|_{}<>=#@*\\/~^`]", body):
      return False
  return True


def split_sentences(text: str) -> list[str]:
  """Sentences of running text: a split after . ! ? (and closing quotes) before a capital letter."""
  text = re.sub(r"\s+", " ", text).strip()
  return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def english_sentences(passages: Iterable[str], min_words: int = 5, max_words: int = 40) -> list[str]:
  """Clean English sentences of `min_words`-`max_words` words from prose passages, duplicates dropped."""
  out, seen = [], set()
  for passage in passages:
    # Drop attribution lines ("-- Mark Twain") and everything after them.
    lines = []
    for line in passage.splitlines():
      if line.strip().startswith("--"):
        break
      lines.append(line)
    for s in split_sentences(" ".join(lines)):
      if not _PROSE_CHARS.fullmatch(s) or not s[0].isupper() or s[-1] not in ".!?\"'":
        continue
      n_words = len(_WORD.findall(s))
      tokens = tokenize(s)
      if not min_words <= n_words <= max_words or n_words < 0.7 * len(tokens):
        continue
      if s not in seen:
        seen.add(s)
        out.append(s)
  return out


def load_english_sentences(fortunes_dir: str = FORTUNES_DIR, kjv_text: str | None = None) -> dict[str, list[str]]:
  """English sentences by corpus: "fortunes" (all English prose fortune files) and, if given, "kjv"."""
  passages = []
  for name in sorted(os.listdir(fortunes_dir)):
    path = os.path.join(fortunes_dir, name)
    if "." in name or name in NON_PROSE_FORTUNES or not os.path.isfile(path):
      continue
    passages.extend(e for e in read_fortunes(path) if _is_prose_entry(e))
  corpora = {"fortunes": english_sentences(passages)}
  if kjv_text:
    corpora["kjv"] = english_sentences(parse_kjv(kjv_text))
  return corpora


def load_chinese_passages(fortunes_dir: str = FORTUNES_DIR) -> list[list[str]]:
  """Chinese fortunes as passages of lines; lines without any CJK character and title/author lines dropped."""
  passages = []
  for name in CHINESE_FORTUNES:
    path = os.path.join(fortunes_dir, name)
    if not os.path.exists(path):
      continue
    for entry in read_fortunes(path):
      lines = [re.sub(r"\s+", " ", l).strip() for l in entry.splitlines()]
      lines = [l for l in lines if _CJK_RUN.search(l) and not l.startswith(("作者", "题目", "--", "《"))]
      if lines:
        passages.append(lines)
  return passages
