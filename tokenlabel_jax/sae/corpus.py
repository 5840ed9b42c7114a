"""Text corpora -> fixed-length token contexts: the inputs every later stage reads.

Sources are Debian packages installed by scripts/install_corpora.sh (each named with its licence), or any directory of
.txt files. Documents are shuffled (seeded) across sources, tokenized with the subject model's tokenizer, joined with
a blank line and cut into contexts of `context_len` tokens, so a context may start mid-document as in LM training.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import os
import re
import shutil
import subprocess
import sys
from typing import Callable, Sequence

import numpy as np

from tokenlabel_jax import records
from tokenlabel_jax import synthetic
from tokenlabel_jax.errors import UserError

PYTHON_DOCS = "/usr/share/doc/python3.11/html/_sources"
JARGON = "/usr/share/doc/jargon-text/jargon.txt.gz"


@dataclasses.dataclass(frozen=True)
class Source:
  name: str
  package: str  # the Debian package that ships it
  licence: str
  read: Callable[[], list[str]]  # -> documents


def _kjv() -> list[str]:
  """The KJV, one chapter a document, as the `bible` program of bible-kjv prints it."""
  exe = shutil.which("bible")
  if exe is None:
    return []
  out = subprocess.run([exe, "-l1000", "gen1:1-rev22:21"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       check=True).stdout
  chapters, current = [], []
  for line in out.splitlines():
    if re.match(r"\S", line) and current:  # a "Book N:" heading starts a chapter
      chapters.append(" ".join(current))
      current = []
    m = re.match(r"\s+\d+ (.*\S)", line)
    if m:
      current.append(m.group(1))
  if current:
    chapters.append(" ".join(current))
  return chapters


def _fortunes() -> list[str]:
  """Every English fortune entry as written (verse, dialogue, quotations and their attributions)."""
  root = synthetic.FORTUNES_DIR
  if not os.path.isdir(root):
    return []
  docs = []
  for name in sorted(os.listdir(root)):
    path = os.path.join(root, name)
    if "." not in name and name not in synthetic.NON_PROSE_FORTUNES and os.path.isfile(path):
      docs.extend(synthetic.read_fortunes(path))
  return docs


def _wordnet() -> list[str]:
  """WordNet 3.0 glosses with their example sentences: 'dog: a member of the genus Canis ...; "the dog barked"'."""
  docs = []
  for pos in ("noun", "verb", "adj", "adv"):
    path = os.path.join(synthetic.WORDNET_DIR, f"data.{pos}")
    if not os.path.isfile(path):
      continue
    with open(path, encoding="utf-8", errors="replace") as f:
      for line in f:
        if line.startswith(" ") or "|" not in line:  # the licence header lines start with two spaces
          continue
        head, gloss = line.split("|", 1)
        word = head.split()[4].replace("_", " ")
        docs.append(f"{re.sub(r'[(][a-z]+[)]$', '', word)}: {gloss.strip()}")
  return docs


def _python_docs() -> list[str]:
  """The Python 3.11 documentation's reStructuredText sources, one file a document (prose, code and markup)."""
  return [open(p, encoding="utf-8", errors="replace").read()
          for p in sorted(glob.glob(os.path.join(PYTHON_DOCS, "**", "*.rst.txt"), recursive=True))]


def _jargon() -> list[str]:
  """The Jargon File 4.4.7, one entry (paragraph block) a document."""
  if not os.path.isfile(JARGON):
    return []
  with gzip.open(JARGON, "rt", encoding="utf-8", errors="replace") as f:
    text = f.read()
  return [b.strip() for b in re.split(r"\n\s*\n", text) if len(b.split()) >= 5]


DEBIAN_SOURCES = (
    Source("kjv", "bible-kjv-text", "public domain (the King James Version text)", _kjv),
    Source("fortunes", "fortunes, fortunes-min", "BSD (fortune-mod); quotations from their authors", _fortunes),
    Source("wordnet", "wordnet-base", "WordNet 3.0 licence (Princeton University, permissive, BSD-like)", _wordnet),
    Source("python_docs", "python3.11-doc", "PSF licence / Zero-Clause BSD (Python documentation)", _python_docs),
    Source("jargon", "jargon-text", "public domain (the Jargon File)", _jargon),
)


def text_dir_source(path: str) -> Source:
  """Every *.txt file under `path`, one file a document. A file that is not UTF-8 text (Latin-1, a binary renamed) is
  skipped with a warning: decoded leniently, its accents or bytes would become U+FFFD in the SAE's corpus unseen."""
  def read():
    docs, skipped = [], []
    for p in sorted(glob.glob(os.path.join(path, "**", "*.txt"), recursive=True)):
      try:
        with open(p, encoding="utf-8-sig") as f:
          text = f.read()
      except (UnicodeDecodeError, OSError):
        text = None
      if text is None or "\x00" in text:
        skipped.append(os.path.relpath(p, path))
      else:
        docs.append(text)
    if skipped:
      print(f"corpus: warning: skipped {len(skipped)} file(s) that are not UTF-8 text: {records.some_names(skipped)}",
            file=sys.stderr)
    return docs
  return Source(os.path.basename(os.path.normpath(path)) or "text", "(local files)", "as the files say", read)


def read_documents(spec: str) -> dict[str, list[str]]:
  """'debian' (every installed Debian source) or a directory of .txt files -> documents by source name."""
  if spec == "debian":
    docs = {s.name: s.read() for s in DEBIAN_SOURCES}
    docs = {k: v for k, v in docs.items() if v}
    fix = "run `bash scripts/install_corpora.sh` (as root) to install the Debian text packages"
  elif os.path.isdir(spec):
    src = text_dir_source(spec)
    docs = {src.name: src.read()}
    fix = "put UTF-8 text files named *.txt in the directory"
  else:
    raise UserError(f"--corpus={spec}: neither 'debian' nor a directory", "pass --corpus=debian or a directory of .txt")
  docs = {k: [d for d in v if d.strip()] for k, v in docs.items()}
  if not any(docs.values()):
    raise UserError(f"--corpus={spec}: no text found", fix)
  return docs


def tokenize_contexts(encode: Callable[[str], list[int]], docs: dict[str, Sequence[str]], context_len: int,
                      max_tokens: int, seed: int = 0, separator: str = "\n\n") -> tuple[np.ndarray, np.ndarray]:
  """Documents -> (tokens_NxL int32, source_N int32: index into sorted(docs)), N = max_tokens // L at most.

  Documents of all sources are shuffled together (seeded), so every prefix of the corpus mixes the sources; only as
  many documents are tokenized as the token budget needs.
  """
  if context_len < 2:
    raise UserError(f"context length {context_len} is too short", "use at least 2 tokens per context")
  names = sorted(docs)
  order = [(s, i) for s, name in enumerate(names) for i in range(len(docs[name]))]
  perm = np.random.default_rng(seed).permutation(len(order))
  sep = encode(separator)
  want = max(1, max_tokens // context_len) * context_len
  ids: list[int] = []
  src: list[int] = []
  for j in perm:
    s, i = order[j]
    piece = encode(docs[names[s]][i]) + sep
    ids.extend(piece)
    src.extend([s] * len(piece))
    if len(ids) >= want:
      break
  n = min(len(ids), want) // context_len
  if n == 0:
    raise UserError(f"the corpus holds {len(ids)} tokens, fewer than one context of {context_len}",
                    "add text or lower --context_len")
  tokens_NxL = np.asarray(ids[:n * context_len], np.int32).reshape(n, context_len)
  src_NxL = np.asarray(src[:n * context_len], np.int32).reshape(n, context_len)
  return tokens_NxL, src_NxL[:, 0]
