"""Loading a discriminator model: the embedded default, a GGUF file, or a local Hugging Face directory (safetensors, or
Flax msgpack weights).

Every source is converted once into the project's own checkpoint (orbax params + config + tokenizer files) under the
cache directory, so a second load restores arrays instead of dequantizing or re-reading shards.
"""

from __future__ import annotations

import dataclasses
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


class LoadedModel(NamedTuple):
  cfg: ModelConfig
  params: dict[str, Any]
  tokenizer: tokenizer_lib.Tokenizer
  source: str


def _np_dtype(dtype: str):
  if dtype not in DTYPES:
    raise UserError(f"unknown dtype {dtype!r}", f"use one of {', '.join(DTYPES)}")
  return DTYPES[dtype]


def resolve(spec: str | None) -> str:
  """Model argument -> a GGUF file or a Hugging Face directory."""
  if not spec or spec.lower() in (embedded.NAME, "embedded", "default"):
    return embedded.gguf_path()
  if os.path.isdir(spec) or (spec.endswith(".gguf") and os.path.isfile(spec)):
    return spec
  if os.path.exists(spec):
    raise UserError(f"{spec} is neither a .gguf file nor a model directory",
                    "pass a Hugging Face directory (config.json + safetensors) or a .gguf file")
  raise UserError(f"model {spec!r} not found",
                  f"pass a local path, or '{embedded.NAME}' for the embedded default (no model hub is used)")


def _cache_key(path: str, dtype: str) -> str:
  files = [path] if os.path.isfile(path) else sorted(
      os.path.join(path, f) for f in os.listdir(path) if f.endswith((".json", ".safetensors", ".msgpack")))
  h = hashlib.sha256(f"{dtype} format 2".encode())  # format 2: GGUF rope_freqs and pre-tokenizers read
  for f in files:
    st = os.stat(f)
    h.update(f"{os.path.abspath(f)}:{st.st_size}:{st.st_mtime_ns}".encode())
  return h.hexdigest()[:16]


def _cfg_from_json(d: dict[str, Any]) -> ModelConfig:
  rs = d.pop("rope_scaling")
  factors = d.pop("rope_freq_factors", None)
  return ModelConfig(**d, rope_scaling=RopeScaling(**rs) if rs else None,
                     rope_freq_factors=tuple(factors) if factors is not None else None)


def _convert(path: str, np_dtype) -> tuple[ModelConfig, dict[str, Any], tokenizer_lib.Tokenizer]:
  if os.path.isdir(path):
    cfg = hf_dir.read_config(path)
    tok = tokenizer_lib.from_hf_dir(path)
    if flax_dir.has_weights(path) and not glob.glob(os.path.join(path, "*.safetensors")):
      return cfg, flax_dir.read_params(path, cfg, np_dtype), tok  # saved by Flax (FlaxLlamaForCausalLM)
    return cfg, hf_dir.read_params(path, cfg, np_dtype), tok
  cfg, params, spec = gguf_file.load(path, np.float32)
  params = jax.tree.map(lambda x: x.astype(np_dtype), params)
  return cfg, params, tokenizer_lib.from_gguf_spec(spec)


def load_model(spec: str | None = None, dtype: str = "float32", use_cache: bool = True, verbose: bool = True
               ) -> LoadedModel:
  """Loads (and on first use converts and caches) a Llama-family model; params come back as jax arrays."""
  path = resolve(spec)
  result = _load(path, dtype, _np_dtype(dtype), use_cache, verbose, time.time())
  if os.path.abspath(path) == os.path.abspath(embedded.target_path()):  # its GGUF calls itself "Smollm2 135M 8k ..."
    result = result._replace(cfg=dataclasses.replace(result.cfg, name=embedded.NAME))
  return result


def _load(path: str, dtype: str, np_dtype, use_cache: bool, verbose: bool, t0: float) -> LoadedModel:
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  out_dir = os.path.join(embedded.cache_dir(), "converted", _cache_key(path, dtype))
  meta_path = os.path.join(out_dir, "model.json")
  if use_cache and os.path.isfile(meta_path):
    try:
      with open(meta_path) as f:
        cfg = _cfg_from_json(json.load(f)["config"])
      params = ocp.StandardCheckpointer().restore(os.path.join(out_dir, "params"))
      tok = tokenizer_lib.from_hf_dir(os.path.join(out_dir, "tokenizer"))
      params = jax.tree.map(jnp.asarray, params)
      if verbose:
        print(f"loaded {path} from cache {out_dir} in {time.time() - t0:.1f}s", file=sys.stderr)
      return LoadedModel(cfg, params, tok, path)
    except Exception as e:  # a damaged cache is rebuilt, never fatal
      print(f"warning: converted-model cache {out_dir} unreadable ({type(e).__name__}); rebuilding", file=sys.stderr)
      shutil.rmtree(out_dir, ignore_errors=True)
  cfg, np_params, tok = _convert(path, np_dtype)
  params = {}
  for k in list(np_params):  # move to device leaf by leaf, dropping each host copy as we go
    params[k] = jax.tree.map(jnp.asarray, np_params.pop(k))
  if verbose:
    print(f"converted {path} in {time.time() - t0:.1f}s", file=sys.stderr)
  if use_cache:
    tmp = out_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(os.path.join(os.path.abspath(tmp), "params"), params)
    ckpt.wait_until_finished()
    tok.hf.save_pretrained(os.path.join(tmp, "tokenizer"))
    with open(os.path.join(tmp, "model.json"), "w") as f:
      json.dump({"config": dataclasses.asdict(cfg), "source": path, "dtype": dtype}, f, indent=1)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
  return LoadedModel(cfg, params, tok, path)
