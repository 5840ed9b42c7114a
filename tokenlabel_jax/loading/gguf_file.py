"""Reading a llama.cpp GGUF file: configuration, dequantized weights and tokenizer, all in numpy (no torch)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tokenlabel_jax.config import ModelConfig, RopeScaling
from tokenlabel_jax import tokenizer as tokenizer_lib
from tokenlabel_jax.errors import UserError

SUPPORTED = ("GGUF files of architecture 'llama' with a byte-level BPE tokenizer (tokenizer.ggml.model 'gpt2', "
             "pre-tokenizer " + "/".join(tokenizer_lib.GGUF_PRE_TOKENIZERS) + "): SmolLM2, Llama-3, Llama-3.1/3.2 "
             "(their rope_freqs applied); for SentencePiece models (TinyLlama, Llama-2) load the Hugging Face "
             "directory")


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
  scaling, factors = None, None
  tensors = {t.name: t for t in reader.tensors}
  tensor_names = set(tensors)
  head_dim = int(_field(reader, p + "rope.dimension_count", dim // n_heads))
  scaling_type = _field(reader, p + "rope.scaling.type")
  if "rope_freqs.weight" in tensors:  # Llama-3.1/3.2: llama.cpp divides each rotary frequency by these factors
    factors = tuple(float(x) for x in _dequantize(tensors["rope_freqs.weight"], path).reshape(-1))
    if len(factors) != head_dim // 2:
      raise UserError(f"{path}: rope_freqs holds {len(factors)} factors for heads of {head_dim // 2} rotary pairs",
                      "the file is inconsistent: re-export it")
  elif scaling_type == "llama3":
    scaling = RopeScaling(factor=float(_field(reader, p + "rope.scaling.factor")))
  elif scaling_type not in (None, "none"):
    raise UserError(f"{path}: rope scaling {scaling_type!r} is not supported",
                    f"supported: none, and Llama-3.1's (a rope_freqs tensor); {SUPPORTED}")
  return ModelConfig(
      vocab_size=int(vocab), dim=dim, n_layers=int(_field(reader, p + "block_count")), n_heads=n_heads,
      n_kv_heads=int(_field(reader, p + "attention.head_count_kv", n_heads)),
      hidden_dim=int(_field(reader, p + "feed_forward_length")),
      head_dim=head_dim, rope_freq_factors=factors,
      norm_eps=float(_field(reader, p + "attention.layer_norm_rms_epsilon", 1e-5)),
      rope_theta=float(_field(reader, p + "rope.freq_base", 10000.0)), rope_scaling=scaling,
      max_seq_len=int(_field(reader, p + "context_length", 2048)),
      tie_embeddings="output.weight" not in tensor_names,
      name=str(_field(reader, "general.name", "gguf-llama")))


def unpermute_qk(w_OxI: np.ndarray, n_heads: int) -> np.ndarray:
  """Undo llama.cpp's row permutation of q/k weights (interleaved rotary pairs -> Hugging Face's halves layout)."""
  out, rest = w_OxI.shape[0], w_OxI.shape[1:]
  return w_OxI.reshape(n_heads, out // n_heads // 2, 2, *rest).swapaxes(1, 2).reshape(w_OxI.shape)


def _dequantize(t, path: str) -> np.ndarray:
  """One tensor as float32 numpy, in the file's row-major shape ([out, in] for matrices)."""
  from gguf import quants  # pylint: disable=import-outside-toplevel
  try:
    w = quants.dequantize(t.data, t.tensor_type)
  except Exception as e:
    raise UserError(f"{path}: cannot dequantize {t.name} ({t.tensor_type.name}: {e})",
                    "re-export the model with a quantization the gguf package reads (F32, F16, Q8_0, Q4_*, K-quants)"
                    ) from None
  return np.asarray(w, np.float32).reshape([int(d) for d in reversed(t.shape)] if w.ndim > 1 else -1)


def read_params(reader, cfg: ModelConfig, path: str, dtype=np.float32) -> dict[str, Any]:
  """Dequantizes every tensor into the model's stacked parameter layout (weights as [in, out])."""
  tensors = {t.name: t for t in reader.tensors}

  def get(name: str) -> np.ndarray:
    if name not in tensors:
      raise UserError(f"{path} has no tensor {name!r}", f"the file is incomplete; supported: {SUPPORTED}")
    return _dequantize(tensors[name], path)

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
    raise UserError(f"GGUF tokenizer type {model!r} (tokenizer.ggml.model) is not supported",
                    f"supported: {SUPPORTED}")
  pre = _field(reader, "tokenizer.ggml.pre", "default")
  if pre not in tokenizer_lib.GGUF_PRE_TOKENIZERS:
    raise UserError(f"GGUF pre-tokenizer {pre!r} (tokenizer.ggml.pre) is not supported", f"supported: {SUPPORTED}")
  return dict(
      tokens=list(_field(reader, "tokenizer.ggml.tokens")),
      merges=list(_field(reader, "tokenizer.ggml.merges") or []),
      token_types=list(_field(reader, "tokenizer.ggml.token_type")),
      pre=pre,
      bos_id=_field(reader, "tokenizer.ggml.bos_token_id"), eos_id=_field(reader, "tokenizer.ggml.eos_token_id"),
      chat_template=_field(reader, "tokenizer.chat_template"))


def load(path: str, dtype=np.float32):
  """(config, numpy params, tokenizer spec) of a GGUF file."""
  reader = _open(path)
  cfg = read_config(reader, path)
  spec = read_tokenizer_spec(reader)  # before the weights: an unsupported tokenizer fails at once
  return cfg, read_params(reader, cfg, path, dtype), spec
