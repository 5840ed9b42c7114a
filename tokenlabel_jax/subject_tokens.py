"""Token ids of the subject model (the one whose activations are labeled) turned into the strings records hold.

Some exports store ids, not strings (delphi caches; JSONL written from a pipeline's token tensors). Each id becomes
`tokenizer.decode([id])`, the text that token adds, leading space included, through the subject model's own
tokenizer files: a local directory, as no model hub is used.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

from tokenlabel_jax.errors import UserError

FLAG_HELP = ("Tokenizer directory of the model the activations come from, where the data stores token ids (delphi "
             "caches, JSONL of ids).")
FIX = ("pass --subject_tokenizer=DIR, the subject model's tokenizer files (API: tl.as_features(..., "
       "subject_tokenizer=DIR)); no model hub is used")


def load_tokenizer(spec: str | None, config_dirs: Sequence[str] = (), what: str = "these records store token ids"):
  """`spec`, else a local `model_name` of a delphi cache's config.json in `config_dirs`, else a tokenizer.json there."""
  from transformers import AutoTokenizer  # pylint: disable=import-outside-toplevel
  candidates = [spec] if spec else []
  for d in config_dirs:
    try:
      with open(os.path.join(d, "config.json"), encoding="utf-8") as f:
        model_name = json.load(f).get("model_name")
      if model_name and os.path.isdir(model_name):
        candidates.append(model_name)
    except (OSError, ValueError, AttributeError):
      pass
    if os.path.isfile(os.path.join(d, "tokenizer.json")):
      candidates.append(d)
  for c in candidates:
    try:
      return AutoTokenizer.from_pretrained(c, local_files_only=True)
    except Exception as e:  # pylint: disable=broad-except
      if c == spec:
        raise UserError(f"cannot load the subject tokenizer {spec} ({type(e).__name__})",
                        "pass a local directory with the subject model's tokenizer files") from None
  raise UserError(f"{what}, and no tokenizer for them was found", FIX)


class IdDecoder:
  """ids -> token strings, the tokenizer loaded on first use (most files store strings) and each id decoded once.
  `spec` is a tokenizer directory, or (from the API) the list of every id's string."""

  def __init__(self, spec: str | Sequence[str] | None, config_dirs: Sequence[str] = ()):
    self.spec, self.config_dirs = spec, list(config_dirs)
    self._tok: Any = None if spec is None or isinstance(spec, str) else _Table(spec)
    self._strings: dict[int, str] = {}

  def __call__(self, ids: Sequence[int], where: str) -> list[str]:
    if self._tok is None:
      self._tok = load_tokenizer(self.spec, self.config_dirs, f"{where}: field \"tokens\" holds token ids")
    out = []
    for i in ids:
      i = int(i)
      if i not in self._strings:
        if not 0 <= i < len(self._tok):
          raise UserError(f"{where}: token id {i} is outside the subject tokenizer's {len(self._tok)} tokens",
                          "pass the tokenizer of the model these ids come from (--subject_tokenizer)")
        self._strings[i] = self._tok.decode([i])
      out.append(self._strings[i])
    return out


class _Table:
  """Every id's string, given as a list, in a tokenizer's shape."""

  def __init__(self, strings: Sequence[str]):
    self.strings = list(strings)

  def __len__(self) -> int:
    return len(self.strings)

  def decode(self, ids: Sequence[int]) -> str:
    return "".join(self.strings[i] for i in ids)
