"""Reading a llama.cpp GGUF file: configuration, dequantized weights and tokenizer, all in numpy (no torch)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tokenlabel_jax.config import ModelConfig, RopeScaling
from tokenlabel_jax.errors import UserError

SUPPORTED = "GGUF files of architecture 'llama' (SmolLM2, TinyLlama, Llama-2/3 conversions)"


def _open(path: str):
  import gguf  # pylint: disable=import-outside-toplevel
  if not os.path.isfile(path):
    raise UserError(f"model file {path} does not exist", "pass an existing .gguf file or a Hugging Face directory")
  try:
    return gguf.GGUFReader(path)
  except Exception as e:  # the reader raises assorted errors on truncated or foreign files
    raise UserError(f"{path} is not a readable GGUF file ({type(e).__name__}: {e})",
                    "the file is truncated or corrupt: delete it (the embedded model is fetched again) or re-download it"
                    ) from None


def _field(reader, key: str, default: Any = None) -> Any:
  f = reader.fields.get(key)
  return default if f is None else f.contents()


def read_config(reader, path: str) -> ModelConfig:
  arch = _field(reader, "general.architecture")
  if arch != "llama":
    raise UserError(f"{path} holds a {arch!r} model", f"supported: {SUPPORTED}")
  p = "llama."
  n_heads = int(_field(reader, p + "attention.head_count"))
  dim = int(_field(reader, p + "embedding_length"))
  vocab = _field(reader, p + "vocab_size") or len(reader.fields["tokenizer.ggml.tokens"].data)
  scaling = None
  if _field(reader, p + "rope.scaling.type") == "llama3":  # rarely stored; Llama-3.1 GGUFs ship rope_freqs instead
    scaling = RopeScaling(factor=float(_field(reader, p + "rope.scaling.factor")))
  tensor_names = {t.name for t in reader.tensors}
  return ModelConfig(
      vocab_size=int(vocab), dim=dim, n_layers=int(_field(reader, p + "block_count")), n_heads=n_heads,
      n_kv_heads=int(_field(reader, p + "attention.head_count_kv", n_heads)),
      hidden_dim=int(_field(reader, p + "feed_forward_length")),
      head_dim=int(_field(reader, p + "rope.dimension_count", dim // n_heads)),
      norm_eps=float(_field(reader, p + "attention.layer_norm_rms_epsilon", 1e-5)),
      rope_theta=float(_field(reader, p + "rope.freq_base", 10000.0)), rope_scaling=scaling,
      max_seq_len=int(_field(reader, p + "context_length", 2048)),
      tie_embeddings="output.weight" not in tensor_names,
      name=str(_field(reader, "general.name", "gguf-llama")))


def unpermute_qk(w_OxI: np.ndarray, n_heads: int) -> np.ndarray:
  """Undo llama.cpp's row permutation of q/k weights (interleaved rotary pairs -> Hugging Face's halves layout)."""
  out, rest = w_OxI.shape[0], w_OxI.shape[1:]
  return w_OxI.reshape(n_heads, out // n_heads // 2, 2, *rest).swapaxes(1, 2).reshape(w_OxI.shape)


def read_params(reader, cfg: ModelConfig, path: str, dtype=np.float32) -> dict[str, Any]:
  """Dequantizes every tensor into the model's stacked parameter layout (weights as [in, out])."""
  from gguf import quants  # pylint: disable=import-outside-toplevel
  tensors = {t.name: t for t in reader.tensors}

  def get(name: str) -> np.ndarray:
    if name not in tensors:
      raise UserError(f"{path} has no tensor {name!r}", f"the file is incomplete; supported: {SUPPORTED}")
    t = tensors[name]
    try:
      w = quants.dequantize(t.data, t.tensor_type)
    except Exception as e:
      raise UserError(f"{path}: cannot dequantize {name} ({t.tensor_type.name}: {e})",
                      "re-export the model with a quantization the gguf package reads (F32, F16, Q8_0, Q4_*, K-quants)"
                      ) from None
    return np.asarray(w, np.float32).reshape([int(d) for d in reversed(t.shape)] if w.ndim > 1 else -1)

  L = cfg.n_layers
  layer_names = {
      "attn_norm_LxD": ("attn_norm", False), "wq_LxDxHE": ("attn_q", True), "wk_LxDxKE": ("attn_k", True),
      "wv_LxDxKE": ("attn_v", True), "wo_LxHExD": ("attn_output", True), "mlp_norm_LxD": ("ffn_norm", False),
      "w_gate_LxDxF": ("ffn_gate", True), "w_up_LxDxF": ("ffn_up", True), "w_down_LxFxD": ("ffn_down", True)}
  layers: dict[str, np.ndarray] = {}
  for key, (gname, is_matrix) in layer_names.items():
    stacked = None
    for i in range(L):
      w = get(f"blk.{i}.{gname}.weight")
      if gname == "attn_q":
        w = unpermute_qk(w, cfg.n_heads)
      elif gname == "attn_k":
        w = unpermute_qk(w, cfg.n_kv_heads)
      w = w.T if is_matrix else w  # GGUF (like torch) stores [out, in]; we multiply x @ W[in, out]
      if stacked is None:
        stacked = np.empty((L, *w.shape), dtype)
      stacked[i] = w
    layers[key] = stacked
  params = {"embed_VxD": get("token_embd.weight").astype(dtype), "layers": layers,
            "final_norm_D": get("output_norm.weight").astype(dtype)}
  if not cfg.tie_embeddings:
    params["lm_head_DxV"] = np.ascontiguousarray(get("output.weight").T).astype(dtype)
  return params


def read_tokenizer_spec(reader) -> dict[str, Any]:
  """The tokenizer as plain data (tokens, merges, special tokens, chat template) for `tokenizer.from_gguf_spec`."""
  model = _field(reader, "tokenizer.ggml.model")
  if model != "gpt2":
    raise UserError(f"GGUF tokenizer type {model!r} is not supported",
                    "supported: byte-level BPE ('gpt2') tokenizers; for others load the Hugging Face directory")
  return dict(
      tokens=list(_field(reader, "tokenizer.ggml.tokens")),
      merges=list(_field(reader, "tokenizer.ggml.merges")),
      token_types=list(_field(reader, "tokenizer.ggml.token_type")),
      pre=_field(reader, "tokenizer.ggml.pre", "default"),
      bos_id=_field(reader, "tokenizer.ggml.bos_token_id"), eos_id=_field(reader, "tokenizer.ggml.eos_token_id"),
      chat_template=_field(reader, "tokenizer.chat_template"))


def load(path: str, dtype=np.float32):
  """(config, numpy params, tokenizer spec) of a GGUF file."""
  reader = _open(path)
  cfg = read_config(reader, path)
  return cfg, read_params(reader, cfg, path, dtype), read_tokenizer_spec(reader)
