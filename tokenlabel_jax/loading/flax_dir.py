"""Reading Llama weights saved by Flax (transformers' FlaxLlamaForCausalLM): `flax_model.msgpack`, or shards listed in
`flax_model.msgpack.index.json`, through `flax.serialization`, into the same stacked parameter pytree as safetensors.

Flax layout (params of FlaxLlamaForCausalLMModule): model/embed_tokens/embedding [V, D]; model/layers/<i>/
{input_layernorm,post_attention_layernorm}/weight [D]; model/layers/<i>/self_attn/{q,k,v,o}_proj/kernel and
model/layers/<i>/mlp/{gate,up,down}_proj/kernel, each [in, out] (already our orientation: no transpose);
model/norm/weight [D]; lm_head/kernel [D, V]. A single file holds the nested dict; each shard holds a flat dict
whose keys are those paths joined by "/".
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

import numpy as np

from tokenlabel_jax.config import ModelConfig
from tokenlabel_jax.errors import UserError
from tokenlabel_jax.loading.hf_dir import empty_layers

WEIGHTS = "flax_model.msgpack"
INDEX = "flax_model.msgpack.index.json"

# Flax path inside "model/layers/<i>/" -> our stacked name
_LAYER_KEYS = {
    "input_layernorm/weight": "attn_norm_LxD",
    "self_attn/q_proj/kernel": "wq_LxDxHE",
    "self_attn/k_proj/kernel": "wk_LxDxKE",
    "self_attn/v_proj/kernel": "wv_LxDxKE",
    "self_attn/o_proj/kernel": "wo_LxHExD",
    "post_attention_layernorm/weight": "mlp_norm_LxD",
    "mlp/gate_proj/kernel": "w_gate_LxDxF",
    "mlp/up_proj/kernel": "w_up_LxDxF",
    "mlp/down_proj/kernel": "w_down_LxFxD",
}
_BIAS_KEYS = {"self_attn/q_proj/bias": "bq_LxHE", "self_attn/k_proj/bias": "bk_LxKE",
              "self_attn/v_proj/bias": "bv_LxKE"}


def has_weights(path: str) -> bool:
  return os.path.isfile(os.path.join(path, WEIGHTS)) or os.path.isfile(os.path.join(path, INDEX))


def _flatten(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
  if isinstance(tree, dict):
    for k, v in tree.items():
      yield from _flatten(v, f"{prefix}{k}/")
  else:
    yield prefix[:-1], tree


def _restore(file: str) -> dict[str, Any]:
  from flax import serialization  # pylint: disable=import-outside-toplevel
  try:
    with open(file, "rb") as f:
      raw = f.read()
  except OSError as e:
    raise UserError(f"{file} cannot be read ({e.strerror})", "re-download the Flax weights") from None
  if raw[:7] == b"version":  # a git-lfs pointer in place of the weights
    raise UserError(f"{file} is a git-lfs pointer, not the weights", "fetch the weights (git lfs pull)")
  try:
    state = serialization.msgpack_restore(raw)
  except Exception as e:  # pylint: disable=broad-except  # msgpack raises several types on damaged bytes
    raise UserError(f"{file} is not a readable Flax msgpack file ({type(e).__name__})",
                    "re-download or re-save the Flax weights") from None
  if not isinstance(state, dict):
    raise UserError(f"{file} holds a {type(state).__name__}, not a parameter dict", "re-save the Flax weights")
  return dict(_flatten(state))


def _files(path: str) -> list[str]:
  single = os.path.join(path, WEIGHTS)
  if os.path.isfile(single):
    return [single]
  index = os.path.join(path, INDEX)
  try:
    with open(index) as f:
      shards = sorted(set(json.load(f)["weight_map"].values()))
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
    raise UserError(f"{index} is not a valid index ({type(e).__name__})", "restore the index JSON") from None
  absent = [s for s in shards if not os.path.isfile(os.path.join(path, s))]
  if absent:
    raise UserError(f"{path} lacks {', '.join(absent)} (listed in {index})", "re-download the missing shards")
  return [os.path.join(path, s) for s in shards]


def read_params(path: str, cfg: ModelConfig, dtype=np.float32) -> dict[str, Any]:
  """Fills preallocated stacked arrays file by file (one shard in memory at a time)."""
  L, D, V = cfg.n_layers, cfg.dim, cfg.vocab_size
  layers = empty_layers(cfg, dtype)
  layer_keys = {**_LAYER_KEYS, **_BIAS_KEYS} if cfg.qkv_bias else _LAYER_KEYS
  params: dict[str, Any] = {"layers": layers}
  seen: set[str] = set()
  top = {"model/embed_tokens/embedding": ("embed_VxD", (V, D)), "model/norm/weight": ("final_norm_D", (D,))}
  if not cfg.tie_embeddings:
    top["lm_head/kernel"] = ("lm_head_DxV", (D, V))
  for file in _files(path):
    for name, w in _restore(file).items():
      w = np.asarray(w)
      if name in top:
        key, shape = top[name]
        target = None
      elif name.startswith("model/layers/"):
        i_str, _, rest = name[len("model/layers/"):].partition("/")
        if rest not in layer_keys or not i_str.isdigit() or int(i_str) >= L:
          continue
        key, target = layer_keys[rest], int(i_str)
        shape = layers[key].shape[1:]
      else:
        continue  # lm_head of a tied model, or extras
      if w.shape != shape:
        raise UserError(f"{file}: {name} has shape {w.shape}, config.json implies {shape}",
                        "config.json does not belong to these weights")
      if target is None:
        params[key] = w.astype(dtype)
      else:
        layers[key][target] = w
      seen.add(name)
  expected = set(top) | {f"model/layers/{i}/{k}" for i in range(L) for k in layer_keys}
  missing = sorted(expected - seen)
  if missing:
    raise UserError(f"{path} lacks {len(missing)} Flax parameters, e.g. {missing[:3]}",
                    "some shards are missing or the weights are not a FlaxLlamaForCausalLM's")
  return params
