"""Activation data as other tools export it, read into `data.Feature`s, and labels written back in their shapes.

Readers (picked by `detect`, from the file's content, not only its name):
  jsonl          this project's activation records, one JSON object a line (records.py)
  neuronpedia    a Neuronpedia feature JSON (`/api/feature/...`: {"modelId", "layer", "index", "activations":
                 [{"tokens", "values"}, ...]}), a list of them, or Neuronpedia export rows (JSONL of {"modelId",
                 "layer", "index", "tokens", "values"})
  sae_dashboard  SAEDashboard's Neuronpedia batch files (SAELens SAEs: batch-N.json, {"model_id", "layer", "sae_set",
                 "features": [{"feature_index", "activations": [{"tokens", "values", "bin_min", ...}]}]})
  delphi         a delphi latent cache: <hookpoint>/<first>_<last>.safetensors holding "locations" (N x 3: sequence,
                 position, latent - first), "activations" (N) and "tokens" (sequences x positions, token ids), with
                 <hookpoint>/config.json; token ids become strings through the subject model's tokenizer
  openai         OpenAI neuron-explainer NeuronRecord JSON ({"neuron_id": {"layer_index", "neuron_index"},
                 "most_positive_activation_records" / "random_sample": [{"tokens", "activations"}]})

Features are named `<source>_latent<index>` (delphi's own naming), with source `<modelId>@<layer>` for Neuronpedia and
SAEDashboard, the hookpoint for delphi, and the layer index for OpenAI neurons; `write_explanations` parses the name
back into the id fields.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Iterable

import numpy as np

from tokenlabel_jax import records as records_lib
from tokenlabel_jax import runfiles
from tokenlabel_jax import subject_tokens
from tokenlabel_jax.errors import UserError

FORMATS = {
    "jsonl": "tokenlabel activation records (.jsonl: {\"tokens\", \"activations\"} per line)",
    "neuronpedia": "Neuronpedia feature JSON ({\"activations\": [{\"tokens\", \"values\"}]}) or export rows (.jsonl)",
    "sae_dashboard": "SAEDashboard / SAELens Neuronpedia batch JSON ({\"features\": [{\"feature_index\", "
                     "\"activations\"}]})",
    "delphi": "delphi latent cache (directory of <hookpoint>/<first>_<last>.safetensors)",
    "openai": "OpenAI neuron-explainer NeuronRecord JSON ({\"neuron_id\", \"most_positive_activation_records\"})",
}
_SPLIT_FILE = re.compile(r"^(\d+)_(\d+)\.safetensors$")
_LATENT_NAME = re.compile(r"^(.*)_latent(\d+)$")


def known_formats() -> str:
  return "; ".join(f"{k}: {v}" for k, v in FORMATS.items())


def _unknown(path: str, why: str) -> UserError:
  return UserError(f"{path}: not a known activation format ({why})", "convert it to one of the known formats: "
                   + known_formats())


# ----------------------------------------------------------------------------------------------------------------
# Detecting.


def _is_delphi_dir(path: str) -> bool:
  def has_splits(d):
    return os.path.isdir(d) and any(_SPLIT_FILE.match(f) for f in os.listdir(d))
  return has_splits(path) or any(has_splits(os.path.join(path, d)) for d in os.listdir(path))


def _first_json_line(file: str) -> Any:
  try:
    with records_lib.open_text(file) as f:
      for line in f:
        if line.strip():
          return json.loads(line)
  except (json.JSONDecodeError, *records_lib.TEXT_READ_ERRORS):
    return None  # read as this project's JSONL, whose reader names what is wrong
  return None


def detect(path: str) -> str:
  """The format of a file or directory; a directory of .jsonl files alone is "jsonl", of anything else "mixed"."""
  if os.path.isdir(path):
    if _is_delphi_dir(path):
      return "delphi"
    names = [f for f in os.listdir(path) if os.path.isfile(os.path.join(path, f))]
    if any(records_lib.without_gz(f).endswith(".json") for f in names) or any(
        records_lib.without_gz(f).endswith(".jsonl") and detect(os.path.join(path, f)) != "jsonl" for f in names):
      return "mixed"
    return "jsonl"
  if path.endswith(".safetensors"):
    return "delphi"
  kind = records_lib.without_gz(path)  # a .gz file is read decompressed
  if kind.endswith(".jsonl"):
    first = _first_json_line(path)
    if isinstance(first, dict) and "values" in first and "activations" not in first and "tokens" in first:
      return "neuronpedia"
    return "jsonl"
  if kind.endswith(".json"):
    return _detect_json(path, _load_json(path))
  return "jsonl"  # records.py reports what is wrong with it


def _detect_json(path: str, obj: Any) -> str:
  items = obj if isinstance(obj, list) else [obj]
  first = items[0] if items else None
  if not isinstance(first, dict):
    raise _unknown(path, f"a JSON {type(first).__name__ if items else 'empty list'}, not an object")
  if isinstance(first.get("features"), list):
    return "sae_dashboard"
  if "neuron_id" in first and any(k in first for k in ("most_positive_activation_records", "random_sample")):
    return "openai"
  acts = first.get("activations")
  if isinstance(acts, list) and (not acts or isinstance(acts[0], dict)):
    return "neuronpedia"
  if "tokens" in first and "activations" in first:
    raise _unknown(path, "one record in a .json file; activation records go one per line in a .jsonl file")
  raise _unknown(path, f"fields {sorted(first)[:8]} match no known export")


# ----------------------------------------------------------------------------------------------------------------
# Loading.


def load(path: str | os.PathLike, subject_tokenizer: str | None = None) -> list[records_lib.Feature]:
  """Reads any known format (see the module docstring); each feature is checked as records.load_jsonl checks it."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise UserError(f"{path}: no such file or directory", "pass activation data: " + known_formats())
  kind = detect(path)
  if kind == "jsonl":
    return records_lib.load_jsonl(path, subject_tokenizer)
  if kind == "mixed":
    pairs = []
    for f in sorted(os.listdir(path)):
      full = os.path.join(path, f)
      if os.path.isfile(full) and records_lib.without_gz(f).endswith((".json", ".jsonl")):
        pairs += [(feat.name, r) for feat in load(full, subject_tokenizer) for r in feat.records]
    return _group(pairs, path)
  if kind == "delphi":
    pairs = _read_delphi(path, subject_tokenizer)
  else:
    pairs = {"neuronpedia": _read_neuronpedia, "sae_dashboard": _read_sae_dashboard, "openai": _read_openai}[kind](path)
  return _group(pairs, path)


def _group(pairs: Iterable[tuple[str, records_lib.Record]], where: str, check: bool = True
           ) -> list[records_lib.Feature]:
  by_name: dict[str, list[records_lib.Record]] = {}
  for name, record in pairs:
    by_name.setdefault(name, []).append(record)
  if not by_name:
    raise UserError(f"{where}: holds no activation records", "export the features' top activations first")
  features = [records_lib.Feature(name, tuple(records)) for name, records in by_name.items()]
  return records_lib.check_features(features, lambda f: [where]) if check else features


def _record(tokens: Any, values: Any, where: str, name: str) -> tuple[str, records_lib.Record]:
  """Checks one exported sequence as records.py checks a JSONL line (same messages), as float32 activations."""
  if isinstance(values, np.ndarray):
    values = values.tolist()
  return records_lib.parse_record({"tokens": tokens, "activations": values, "feature": name}, where, name)


def _load_json(path: str) -> Any:
  try:
    with records_lib.open_text(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError, *records_lib.TEXT_READ_ERRORS) as e:
    raise UserError(f"{path}: not readable JSON ({type(e).__name__}: {e})",
                    "re-export the file as UTF-8 JSON, as it is or gzip-compressed (*.gz)") from None


def _name(source: str, index: Any) -> str:
  return f"{source}_latent{index}".replace("/", "-").replace(os.sep, "-")


def _np_source(obj: dict[str, Any], default: str) -> str:
  model, layer = obj.get("modelId") or obj.get("model_id"), obj.get("layer") or obj.get("sae_set")
  if model and layer:
    return f"{model}@{layer}"
  return str(layer or model or default)


def _read_neuronpedia(path: str) -> list[tuple[str, records_lib.Record]]:
  stem = records_lib.stem(path)
  out = []
  if records_lib.without_gz(path).endswith(".jsonl"):  # export rows: one record a line, with its feature's ids
    for where, row in records_lib.jsonl_rows(path, "re-export the file"):
      if not isinstance(row, dict) or "tokens" not in row or "values" not in row:
        raise UserError(f"{where}: a Neuronpedia export row needs \"tokens\" and \"values\"", "re-export the file")
      name = _name(_np_source(row, stem), row.get("index", stem))
      out.append(_record(row["tokens"], row["values"], where, name))
    return out
  obj = _load_json(path)
  for k, feat in enumerate(obj if isinstance(obj, list) else [obj]):
    if not isinstance(feat, dict) or not isinstance(feat.get("activations"), list):
      raise UserError(f"{path}: feature {k} has no \"activations\" list", "re-export the Neuronpedia feature JSON")
    name = _name(_np_source(feat, stem), feat.get("index", k))
    out += _token_value_records(feat["activations"], f"{path}: feature {k}", name,
                                "re-export the Neuronpedia feature JSON")
  return out


def _token_value_records(acts: list, where: str, name: str, fix: str) -> list[tuple[str, records_lib.Record]]:
  """Neuronpedia-style activation entries ({"tokens": [...], "values": [...]}) as records of feature `name`."""
  out = []
  for i, act in enumerate(acts):
    at = f"{where}, activation {i}"
    if not isinstance(act, dict) or "tokens" not in act or "values" not in act:
      raise UserError(f"{at}: needs \"tokens\" and \"values\"", fix)
    out.append(_record(act["tokens"], act["values"], at, name))
  return out


def _read_sae_dashboard(path: str) -> list[tuple[str, records_lib.Record]]:
  stem = records_lib.stem(path)
  out = []
  batches = _load_json(path)
  for batch in batches if isinstance(batches, list) else [batches]:
    source = _np_source(batch, stem)
    for k, feat in enumerate(batch.get("features") or []):
      index = feat.get("feature_index", k) if isinstance(feat, dict) else k
      acts = feat.get("activations") if isinstance(feat, dict) else None
      if not isinstance(acts, list):
        raise UserError(f"{path}: feature {index} has no \"activations\" list", "re-run SAEDashboard's export")
      out += _token_value_records(acts, f"{path}: feature {index}", _name(source, index),
                                  "re-run SAEDashboard's export")
  return out


def _read_openai(path: str) -> list[tuple[str, records_lib.Record]]:
  stem = records_lib.stem(path)
  out = []
  objs = _load_json(path)
  for obj in objs if isinstance(objs, list) else [objs]:
    nid = obj.get("neuron_id") if isinstance(obj, dict) else None
    if isinstance(nid, dict):
      name = _name(str(nid.get("layer_index", stem)), nid.get("neuron_index", stem))
    else:
      name = stem
    groups = [("most_positive_activation_records", obj.get("most_positive_activation_records") or []),
              ("random_sample", obj.get("random_sample") or [])]
    for q, sample in enumerate(obj.get("random_sample_by_quantile") or []):
      groups.append((f"random_sample_by_quantile[{q}]", sample or []))
    for field, records in groups:
      for i, rec in enumerate(records):
        where = f"{path}: {field}[{i}]"
        if not isinstance(rec, dict) or "tokens" not in rec or "activations" not in rec:
          raise UserError(f"{where}: an ActivationRecord needs \"tokens\" and \"activations\"", "re-export the file")
        out.append(_record(rec["tokens"], rec["activations"], where, name))
  return out


def _read_delphi(path: str, subject_tokenizer: str | None, max_active: int = 400, max_inactive: int = 100
                 ) -> list[tuple[str, records_lib.Record]]:
  """Per latent: the sequences where it fires (strongest first, up to `max_active`) plus up to `max_inactive` where
  it does not, each with its dense activation over the sequence."""
  from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
  if path.endswith(".safetensors"):
    files = [path]
  else:
    dirs = [path] + [os.path.join(path, d) for d in sorted(os.listdir(path)) if os.path.isdir(os.path.join(path, d))]
    files = [os.path.join(d, f) for d in dirs for f in sorted(os.listdir(d)) if _SPLIT_FILE.match(f)]
  tok = None
  out = []
  for file in files:
    hookpoint = os.path.basename(os.path.dirname(os.path.abspath(file)))
    first = int(_SPLIT_FILE.match(os.path.basename(file)).group(1))
    try:
      split = load_file(file)
    except Exception as e:  # pylint: disable=broad-except
      raise UserError(f"{file}: not a readable safetensors file ({type(e).__name__})",
                      "re-run delphi's cache") from None
    missing = [k for k in ("locations", "activations", "tokens") if k not in split]
    if missing:
      raise UserError(f"{file}: lacks {missing}", "cache with save_tokens=True (delphi's default), which stores the "
                      "token ids the activations refer to")
    loc, act, tokens = split["locations"].astype(np.int64), split["activations"].astype(np.float32), split["tokens"]
    if loc.ndim != 2 or loc.shape[1] != 3 or act.shape != (loc.shape[0],) or tokens.ndim != 2:
      raise UserError(f"{file}: locations {loc.shape}, activations {act.shape}, tokens {tokens.shape} do not fit",
                      "expected locations N x 3, activations N, tokens sequences x positions")
    if loc.size and (loc[:, 0].max() >= tokens.shape[0] or loc[:, 1].max() >= tokens.shape[1]):
      raise UserError(f"{file}: locations point outside the {tokens.shape} token array", "re-run delphi's cache")
    if tok is None:
      tok = subject_tokens.load_tokenizer(subject_tokenizer, [os.path.dirname(os.path.abspath(file)), path],
                                          "this delphi cache stores token ids")
    ids = np.unique(tokens)
    strings = {int(i): tok.decode([int(i)]) for i in ids}
    for latent in np.unique(loc[:, 2]):
      sel = loc[:, 2] == latent
      dense = np.zeros(tokens.shape, np.float32)
      dense[loc[sel, 0], loc[sel, 1]] = act[sel]
      peak = dense.max(axis=1)
      active = np.flatnonzero(peak > 0)
      active = active[np.argsort(-peak[active], kind="stable")][:max_active]
      inactive = np.flatnonzero(peak <= 0)[:max_inactive]
      name = _name(hookpoint, first + int(latent))
      for row in np.concatenate([active, inactive]):
        out.append(_record([strings[int(t)] for t in tokens[row]], dense[row], f"{file}: sequence {row}", name))
  return out


# ----------------------------------------------------------------------------------------------------------------
# Explanations, in the shapes delphi and Neuronpedia take.


def parse_name(name: str) -> dict[str, str]:
  """`<modelId>@<layer>_latent<index>` (or `<layer>_latent<index>`) -> its id fields; other names are the index."""
  m = _LATENT_NAME.match(name)
  if not m:
    return {"modelId": "", "layer": "", "index": name}
  source, index = m.group(1), m.group(2)
  model, _, layer = source.rpartition("@")
  return {"modelId": model, "layer": layer, "index": index}


def write_explanations(run_dir: str) -> str:
  """Writes RUN/explanations.jsonl (one line per feature, Neuronpedia's explanation-export fields plus `score`) and
  RUN/explanations/<feature>.txt (delphi's layout: the explanation as a JSON string). Returns the JSONL path."""
  from tokenlabel_jax import report  # pylint: disable=import-outside-toplevel
  results = report.read_run(run_dir)
  lines = []
  delphi_dir = os.path.join(run_dir, "explanations")
  os.makedirs(delphi_dir, exist_ok=True)
  for r in results:
    label = r.get("label")
    description = label.strip() if isinstance(label, str) else None
    auc = (r.get("heldout") or {}).get("auc") if isinstance(r.get("heldout"), dict) else None
    entry = {**parse_name(str(r.get("feature"))), "feature": r.get("feature"), "description": description,
             "explanationModelName": f"tokenlabel_jax/{r.get('discriminator', '')}/{r.get('model', '')}",
             "typeName": "tokenlabel_jax_token", "score": auc, "scoreType": "heldout_auc", "label": label}
    lines.append(json.dumps(entry, ensure_ascii=False))
    runfiles.write_text(os.path.join(delphi_dir, f"{r['_dir']}.txt"), json.dumps(description, ensure_ascii=False),
                        runfiles.FINISHED_REWRITE)
  path = os.path.join(run_dir, "explanations.jsonl")
  runfiles.write_text(path, "\n".join(lines) + ("\n" if lines else ""), runfiles.FINISHED_REWRITE)
  return path


def looks_like_record(obj: Any) -> bool:
  return isinstance(obj, dict) and "tokens" in obj and ("activations" in obj or "values" in obj)


def from_records(records: Any, name: str, check: bool = True, decode: subject_tokens.IdDecoder | None = None
                 ) -> records_lib.Feature:
  """One feature from in-memory records: (tokens, activations) pairs or dicts with "tokens" and "activations" (or
  "values"); either may be a list or a numpy, JAX or PyTorch array, tokens strings or ids (with `decode`).
  `check=False` leaves `records.check_features` to the caller, which reads several."""
  records = list(records)
  pairs = []
  for i, rec in enumerate(records):
    where = f"{name}: record {i}"
    if looks_like_record(rec):
      tokens, acts = rec["tokens"], rec.get("activations", rec.get("values"))
      split = rec.get("split")
    elif isinstance(rec, (tuple, list)) and len(rec) == 2:
      (tokens, acts), split = rec, None
    else:
      raise UserError(f"{where} is a {type(rec).__name__}",
                      "give (tokens, activations) pairs or dicts with \"tokens\" and \"activations\"")
    tokens = records_lib.as_numpy(tokens).tolist() if records_lib.is_array(tokens) else tokens
    if records_lib.is_array(acts):
      try:
        acts = records_lib.as_numpy(acts).astype(np.float64).tolist()
      except (TypeError, ValueError):  # a value that is no number: parse_record names it
        acts = list(acts) if isinstance(acts, tuple) else acts
    obj = {"tokens": tokens, "activations": acts}
    if split is not None:
      obj["split"] = split
    pairs.append(records_lib.parse_record(obj, where, name, decode))
  return _group(pairs, name, check)[0]
