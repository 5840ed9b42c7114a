"""Activation records as this project writes them: the Record and Feature types, and reading and checking JSONL.

A record is one text as the subject model tokenized it, with one activation per token (JSONL, one record a line):
  {"tokens": [" The", " dog"], "activations": [0.0, 3.2], "feature": "dogs", "split": "train"}
`feature` and `split` are optional; other fields are ignored. Other tools' exports (formats.py) are checked by the
same `parse_record` and `check_feature`, so every reader reports a bad record the same way. `data.load_features`
reads any format; splitting and sampling are in data.py.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import numbers
import os
import sys
import zlib
from typing import IO, Any, Callable, Iterator

import numpy as np

from tokenlabel_jax import subject_tokens
from tokenlabel_jax.errors import UserError

SPLITS = ("train", "heldout")
MAX_NAME_BYTES = 200  # a feature's name is a folder's, and file systems allow 255 bytes (the explanations add ".txt")
# What reading a file that is not UTF-8 text (or a broken .gz) raises, beyond the OSError of a missing file.
TEXT_READ_ERRORS = (UnicodeDecodeError, EOFError, zlib.error, gzip.BadGzipFile)


@dataclasses.dataclass(frozen=True, eq=False)
class Record:
  """One text: the subject model's tokens and the feature's activation on each.

  Compared by identity, since it holds an array.
  """

  tokens: tuple[str, ...]
  activations: np.ndarray  # float32, read-only, len(tokens)
  split: str | None  # "train", "heldout", or None: assigned by `data.assign_splits`
  source: str  # "file.jsonl:12", for messages


@dataclasses.dataclass(frozen=True)
class Feature:
  """A named feature and all its records, in file order."""

  name: str
  records: tuple[Record, ...]


def load_jsonl(path: str | os.PathLike, subject_tokenizer: str | None = None) -> list[Feature]:
  """Reads a .jsonl file of records or a directory of them (sorted by name); every problem is a UserError naming file
  and line. Tokens stored as ids are decoded with `subject_tokenizer` (a tokenizer directory).

  Records without a `feature` field belong to a feature named after their file's stem; records of the same feature
  in several files are merged, in file order. Features are returned in order of first appearance.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    pattern = any(c in os.path.basename(path) for c in "*?[")
    raise UserError(f"{path}: no such file or directory", "pass a .jsonl file of activation records or a directory "
                    "of them" + (" (a pattern is not expanded: pass its directory)" if pattern else ""))
  if os.path.isdir(path):
    files = sorted(os.path.join(path, f) for f in os.listdir(path) if without_gz(f).endswith(".jsonl"))
    files = [f for f in files if os.path.isfile(f)]
    if not files:
      raise UserError(f"{path}: directory holds no .jsonl file",
                      "put activation records in files named *.jsonl, one JSON object per line")
  else:
    files = [path]

  by_name: dict[str, list[Record]] = {}
  files_of: dict[str, list[str]] = {}
  decode = subject_tokens.IdDecoder(subject_tokenizer) if subject_tokenizer else None
  for file in files:
    for name, record in _read_file(file, decode):
      by_name.setdefault(name, []).append(record)
      if file not in files_of.setdefault(name, []):
        files_of[name].append(file)
  features = [Feature(name, tuple(records)) for name, records in by_name.items()]
  return check_features(features, lambda f: files_of[f.name])


def open_text(file: str) -> IO[str]:
  """A file the readers read as text: UTF-8 with or without a byte-order mark (Windows tools write one), decompressed
  when named *.gz (Neuronpedia's bulk exports are .jsonl.gz)."""
  if file.endswith(".gz"):
    return gzip.open(file, "rt", encoding="utf-8-sig")
  return open(file, encoding="utf-8-sig")


def without_gz(name: str) -> str:
  """The name a .gz file has decompressed ("a.jsonl.gz" -> "a.jsonl"), which says its format and its feature."""
  return name[:-3] if name.endswith(".gz") else name


def stem(file: str) -> str:
  """The file's name without folder, .gz and extension: the feature name of records that give none."""
  return os.path.splitext(os.path.basename(without_gz(file)))[0]


def unreadable(file: str, e: Exception) -> UserError:
  packed = "gzip-compressed " if file.endswith(".gz") else ""
  return UserError(f"{file}: cannot be read as {packed}UTF-8 text ({type(e).__name__}: {e})",
                   "pass the records as UTF-8 JSON text, as it is or gzip-compressed (*.gz); unpack other archives "
                   "first, or re-export the file if it was cut short")


def jsonl_rows(file: str, fix: str) -> Iterator[tuple[str, Any]]:
  """("file:line", decoded value) per non-blank line of a JSONL file (blank lines still count); a line that is not
  JSON ends with a message naming it and `fix`, a file that is not text with one naming the file."""
  try:
    with open_text(file) as f:
      for lineno, line in enumerate(f, start=1):
        if not line.strip():
          continue
        where = f"{file}:{lineno}"
        try:
          obj = json.loads(line)
        except json.JSONDecodeError as e:
          raise UserError(f"{where}: invalid JSON ({e.msg}, column {e.colno})", fix) from None
        yield where, obj
  except TEXT_READ_ERRORS as e:
    raise unreadable(file, e) from None


def _read_file(file: str, decode: subject_tokens.IdDecoder | None = None) -> list[tuple[str, Record]]:
  """Parses one JSONL file into (feature name, record) pairs."""
  fix = "write one JSON object per line, e.g. {\"tokens\": [\" a\"], \"activations\": [0.0]}"
  out = [parse_record(obj, where, stem(file), decode) for where, obj in jsonl_rows(file, fix)]
  if not out:
    raise UserError(f"{file}: file is empty (no records)", "write one JSON record per line, or remove the file")
  return out


def parse_record(obj: Any, where: str, default_name: str, decode: subject_tokens.IdDecoder | None = None
                 ) -> tuple[str, Record]:
  """Checks one decoded line and turns it into a Record; `where` is "file:line" for messages. Token ids become
  strings through `decode`; without it they are refused with a message saying what to pass."""
  if not isinstance(obj, dict):
    raise UserError(f"{where}: record is a JSON {type(obj).__name__}, not an object",
                    "each line must be an object with fields \"tokens\" and \"activations\"")
  for field in ("tokens", "activations"):
    if field not in obj:
      raise UserError(f"{where}: field \"{field}\" is missing",
                      "each record needs \"tokens\" (list of strings) and \"activations\" (one number per token)")
  tokens, acts = obj["tokens"], obj["activations"]
  if isinstance(tokens, list) and tokens and all(_is_int(t) for t in tokens):
    if decode is None:
      raise UserError(f"{where}: field \"tokens\" holds token ids ({', '.join(map(str, tokens[:3]))}, ...), not "
                      "strings", subject_tokens.FIX + "; or export the tokens as strings")
    tokens = decode(tokens, where)
  if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
    bad = _first_bad(tokens, lambda t: isinstance(t, str)) if isinstance(tokens, list) else None
    detail = f"token {bad} is {json.dumps(tokens[bad])}" if bad is not None else f"got a {type(tokens).__name__}"
    raise UserError(f"{where}: field \"tokens\" must be a list of strings ({detail})",
                    "export the subject model's tokens as strings, e.g. [\" The\", \" dog\"]")
  if not tokens:
    raise UserError(f"{where}: field \"tokens\" is empty", "drop records of empty texts")
  if not isinstance(acts, list) or not all(_is_number(a) for a in acts):
    bad = _first_bad(acts, _is_number) if isinstance(acts, list) else None
    detail = f"activation {bad} is {json.dumps(acts[bad])}" if bad is not None else f"got a {type(acts).__name__}"
    raise UserError(f"{where}: field \"activations\" must be a list of numbers ({detail})",
                    "give one number per token for a single feature, e.g. [0.0, 3.2]")
  if len(acts) != len(tokens):
    raise UserError(f"{where}: {len(tokens)} tokens but {len(acts)} activations",
                    "give exactly one activation per token")
  with np.errstate(over="ignore"):  # beyond float32 range becomes inf, reported below
    values = np.asarray([_as_float(a) for a in acts], dtype=np.float64).astype(np.float32)
  finite = np.isfinite(values)
  if not finite.all():
    i = int(np.argmin(finite))
    raise UserError(f"{where}: field \"activations\" holds a non-finite value at token {i} ({tokens[i]!r}: {acts[i]})",
                    "replace NaN/infinite activations (or values beyond float32 range) with finite numbers")
  values.setflags(write=False)
  split = obj.get("split")
  if split is not None and split not in SPLITS:
    raise UserError(f"{where}: field \"split\" is {json.dumps(split)}",
                    "use \"train\" or \"heldout\", or leave the field out to split records automatically")
  name = obj.get("feature", default_name)
  if not isinstance(name, str) or not name:
    raise UserError(f"{where}: field \"feature\" must be a non-empty string (got {json.dumps(name)})",
                    "name the feature with a string, or leave the field out to use the file name")
  if name.startswith(".") or any(c in name for c in "/\\\0"):  # "..", "a/b": a folder outside its place, or none
    hint = "".join("-" if c in "/\\\0" else c for c in name).lstrip(".") or "feature"
    raise UserError(f"{where}: feature name {name!r} cannot name a folder of --output_dir (each feature's results "
                    "go to <output_dir>/<feature>/)", f"use a name without /, \\ or a leading dot, e.g. {hint!r}")
  if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:  # file systems allow 255 bytes per folder name
    raise UserError(f"{where}: feature name {name[:40]!r}... is {len(name.encode('utf-8', 'surrogatepass'))} bytes "
                    f"long, too long for the folder <output_dir>/<feature>/",
                    f"use a name of at most {MAX_NAME_BYTES} bytes")
  return name, Record(tuple(tokens), values, split, where)


def as_numpy(x: Any) -> np.ndarray:
  """A numpy, JAX or PyTorch array (or a list) as numpy. Duck-typed, so torch is not imported: a tensor with grad, on
  a GPU or in bfloat16, each of which np.asarray refuses, is detached, moved and cast to float32 first."""
  if hasattr(x, "detach") and hasattr(x, "cpu"):
    x = x.detach().cpu()
    x = x.float() if "bfloat16" in str(x.dtype) else x
  return np.asarray(x)


def is_array(x: Any) -> bool:
  """A tuple or an array of any library (numpy, JAX, PyTorch): what `as_numpy` turns into a list's numbers."""
  return isinstance(x, tuple) or (not isinstance(x, (list, str)) and hasattr(x, "__array__"))


def _is_int(x: Any) -> bool:
  return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool)


def _as_float(x: int | float) -> float:
  try:
    return float(x)
  except OverflowError:  # a JSON integer too large for a float
    return math.inf if x > 0 else -math.inf


def _first_bad(items: list, ok) -> int:
  return next(i for i, x in enumerate(items) if not ok(x))


def check_unique_names(features: list[Feature], where: str) -> list[Feature]:
  """Each feature's results go to <output_dir>/<name>/: two features of one name would overwrite each other there (or
  the second would resume from the first's results), so a name may appear once. The readers merge the records of
  one name; this checks features gathered from several sources (the API's list of paths or Features)."""
  seen = set()
  for f in features:
    if f.name in seen:
      raise UserError(f"{where}: two features are named {f.name!r}",
                      "give each feature its own name (records of one feature belong in one entry)")
    seen.add(f.name)
  return features


def check_features(features: list[Feature], files_of: Callable[[Feature], list[str]]) -> list[Feature]:
  """The features `check_feature` passes. An export of thousands of SAE latents holds some that never fire: those are
  skipped with one warning naming them, not the whole run refused; when no feature passes, the first one's problem
  is the error."""
  kept, problems = [], []
  for feature in features:
    try:
      check_feature(feature, files_of(feature))
      kept.append(feature)
    except UserError as e:
      problems.append((feature.name, e))
  if problems and not kept:
    raise problems[0][1]
  if problems:
    print(f"warning: skipped {len(problems)} of {len(features)} features with nothing to describe (no token above "
          f"0, or none at or below it): {some_names([n for n, _ in problems])}; the first: {problems[0][1].what}",
          file=sys.stderr)
  return kept


def some_names(names: list[str], k: int = 8) -> str:
  """The first k names, quoted, and how many more: a warning about thousands of latents stays one line."""
  return ", ".join(repr(n) for n in names[:k]) + (f" and {len(names) - k} more" if len(names) > k else "")


def check_feature(feature: Feature, files: list[str]) -> None:
  """A feature must have both an active token (act > 0) and an inactive one, or there is nothing to describe."""
  where = ", ".join(files)
  acts = np.concatenate([r.activations for r in feature.records])
  if not (acts > 0).any():
    raise UserError(f"{where}: feature {feature.name!r} is negative-only: field \"activations\" is all zero or below "
                    f"in its {len(feature.records)} records", "add records where the feature fires (activation > 0)")
  if (acts > 0).all():
    raise UserError(f"{where}: feature {feature.name!r} has no negative example: every token has \"activations\" > 0",
                    "add records where the feature does not fire (activation <= 0), e.g. unrelated texts")
