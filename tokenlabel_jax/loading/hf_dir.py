"""Reading a local Hugging Face LlamaForCausalLM or Qwen2ForCausalLM directory (config.json + safetensors shards), one
shard at a time."""

from __future__ import annotations

import glob
import json
import os
from typing import Any

import numpy as np

from tokenlabel_jax.config import ModelConfig
from tokenlabel_jax.errors import UserError

# Hugging Face name (after "model.layers.{i}.") -> (our stacked name, transpose?)
_LAYER_KEYS = {
    "input_layernorm.weight": ("attn_norm_LxD", False),
    "self_attn.q_proj.weight": ("wq_LxDxHE", True),
    "self_attn.k_proj.weight": ("wk_LxDxKE", True),
    "self_attn.v_proj.weight": ("wv_LxDxKE", True),
    "self_attn.o_proj.weight": ("wo_LxHExD", True),
    "post_attention_layernorm.weight": ("mlp_norm_LxD", False),
    "mlp.gate_proj.weight": ("w_gate_LxDxF", True),
    "mlp.up_proj.weight": ("w_up_LxDxF", True),
    "mlp.down_proj.weight": ("w_down_LxFxD", True),
}
_BIAS_KEYS = {  # Qwen2 (qkv_bias)
    "self_attn.q_proj.bias": ("bq_LxHE", False),
    "self_attn.k_proj.bias": ("bk_LxKE", False),
    "self_attn.v_proj.bias": ("bv_LxKE", False),
}


def layer_keys(cfg: ModelConfig) -> dict[str, tuple[str, bool]]:
  return {**_LAYER_KEYS, **_BIAS_KEYS} if cfg.qkv_bias else _LAYER_KEYS


def read_config(path: str) -> ModelConfig:
  cfg_path = os.path.join(path, "config.json")
  if not os.path.isfile(cfg_path):
    raise UserError(f"{path} has no config.json",
                    "pass a Hugging Face model directory (config.json + *.safetensors + tokenizer files)")
  try:
    with open(cfg_path) as f:
      hf = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f"{cfg_path} is not valid JSON ({e})", "restore the model's config.json") from None
  try:
    return ModelConfig.from_hf(hf, name=os.path.basename(os.path.normpath(path)))
  except UserError as e:
    raise UserError(f"{cfg_path}: {e.what}", e.fix) from None
  except (KeyError, TypeError, ValueError, AttributeError) as e:
    raise UserError(f"{cfg_path} lacks or mangles a field ({type(e).__name__}: {e})",
                    "restore the model's config.json") from None


def empty_layers(cfg: ModelConfig, dtype=np.float32) -> dict[str, np.ndarray]:
  """Preallocated stacked per-layer arrays (L x ...), filled shard by shard by the loaders."""
  D, HE, KE, F = cfg.dim, cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim, cfg.hidden_dim
  shapes = {"attn_norm_LxD": (D,), "wq_LxDxHE": (D, HE), "wk_LxDxKE": (D, KE), "wv_LxDxKE": (D, KE),
            "wo_LxHExD": (HE, D), "mlp_norm_LxD": (D,), "w_gate_LxDxF": (D, F), "w_up_LxDxF": (D, F),
            "w_down_LxFxD": (F, D)}
  if cfg.qkv_bias:
    shapes.update(bq_LxHE=(HE,), bk_LxKE=(KE,), bv_LxKE=(KE,))
  return {k: np.empty((cfg.n_layers, *s), dtype) for k, s in shapes.items()}


def read_params(path: str, cfg: ModelConfig, dtype=np.float32) -> dict[str, Any]:
  """Fills preallocated stacked arrays shard by shard: memory peaks at the model plus one tensor, not two models."""
  from safetensors import safe_open  # pylint: disable=import-outside-toplevel
  shards = sorted(glob.glob(os.path.join(path, "*.safetensors")))
  if not shards:
    raise UserError(f"{path} has no *.safetensors files (nor flax_model.msgpack)",
                    "convert the checkpoint to safetensors (transformers: model.save_pretrained(dir))")
  index = os.path.join(path, "model.safetensors.index.json")
  if os.path.isfile(index):  # name the missing shard, not just the tensors it held
    try:
      with open(index) as f:
        listed = set(json.load(f)["weight_map"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
      listed = set()
    absent = sorted(s for s in listed if not os.path.isfile(os.path.join(path, s)))
    if absent:
      raise UserError(f"{path} lacks {', '.join(absent)} (listed in {index})", "re-download the missing shards")
  L, D, V = cfg.n_layers, cfg.dim, cfg.vocab_size
  layers = empty_layers(cfg, dtype)
  keys = layer_keys(cfg)
  params: dict[str, Any] = {"layers": layers}
  seen: set[str] = set()
  for shard in shards:
    try:
      f = safe_open(shard, framework="numpy")
    except Exception as e:
      raise UserError(f"{shard} is not a readable safetensors file ({e})",
                      "re-download or re-save this shard") from None
    with f:
      for name in f.keys():
        try:
          w = f.get_tensor(name)
        except Exception as e:
          raise UserError(f"{shard}: tensor {name} cannot be read ({e})",
                          "the shard is corrupt: re-download it") from None
        w = np.asarray(w).astype(dtype) if w.dtype != dtype else np.asarray(w)
        if name == "model.embed_tokens.weight":
          params["embed_VxD"] = w
        elif name == "model.norm.weight":
          params["final_norm_D"] = w
        elif name == "lm_head.weight":
          if not cfg.tie_embeddings:
            params["lm_head_DxV"] = np.ascontiguousarray(w.T)
        elif name.startswith("model.layers."):
          i_str, rest = name[len("model.layers."):].split(".", 1)
          if rest not in keys:
            continue  # e.g. rotary_emb.inv_freq in old checkpoints
          key, transpose = keys[rest]
          layers[key][int(i_str)] = w.T if transpose else w
        else:
          continue
        seen.add(name)
  expected = {"model.embed_tokens.weight", "model.norm.weight"}
  expected |= {f"model.layers.{i}.{k}" for i in range(L) for k in keys}
  if not cfg.tie_embeddings:
    expected.add("lm_head.weight")
  missing = sorted(expected - seen)
  if missing:
    raise UserError(f"{path} lacks {len(missing)} tensors, e.g. {missing[:3]}",
                    "some safetensors shards are missing or the model is not a LlamaForCausalLM / Qwen2ForCausalLM")
  if params["embed_VxD"].shape != (V, D):
    raise UserError(f"embed_tokens has shape {params['embed_VxD'].shape}, config.json says {(V, D)}",
                    "config.json does not belong to these weights")
  return params
