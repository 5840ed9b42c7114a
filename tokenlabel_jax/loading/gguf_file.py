"""Reading a llama.cpp GGUF file: configuration, tokenizer and weights (dequantized by the gguf package; no torch)."""

from __future__ import annotations

import concurrent.futures
import os
from typing import Any

import numpy as np

from tokenlabel_jax.config import ModelConfig, RopeScaling
from tokenlabel_jax.loading import embedded
from tokenlabel_jax import tokenizer as tokenizer_lib
from tokenlabel_jax.errors import UserError

SUPPORTED = ("GGUF files of architecture 'llama' or 'qwen2' with a byte-level BPE tokenizer (tokenizer.ggml.model "
             "'gpt2', pre-tokenizer " + "/".join(tokenizer_lib.GGUF_PRE_TOKENIZERS) + "): SmolLM2, Llama-3, "
             "Llama-3.1/3.2 (their rope_freqs applied), Qwen2/Qwen2.5; for SentencePiece models (TinyLlama, Llama-2) "
             "load the Hugging Face directory")
ARCHITECTURES = ("llama", "qwen2")  # qwen2: the llama block with q/k/v biases, its q/k rows stored unpermuted


def _open(path: str):
  import gguf  # pylint: disable=import-outside-toplevel
  if not os.path.isfile(path):
    raise UserError(f"model file {path} does not exist", "pass an existing .gguf file or a Hugging Face directory")
  try:
    return gguf.GGUFReader(path)
  except Exception as e:  # the reader raises assorted errors on truncated or foreign files
    cache = os.path.realpath(embedded.cache_dir())
    ours = os.path.commonpath([os.path.realpath(path), cache]) == cache
    raise UserError(f"{path} is not a readable GGUF file ({type(e).__name__}: {e})",
                    "the file is truncated or corrupt: delete it, and the next run fetches the packaged model again"
                    if ours else "the file is truncated, corrupt or not a GGUF file: download or convert it again"
                    ) from None


def _field(reader, key: str, default: Any = None) -> Any:
  f = reader.fields.get(key)
  return default if f is None else f.contents()


def read_config(reader, path: str) -> ModelConfig:
  arch = _field(reader, "general.architecture")
  if arch not in ARCHITECTURES:
    raise UserError(f"{path} holds a {arch!r} model", f"supported: {SUPPORTED}")
  p = arch + "."
  n_heads = int(_field(reader, p + "attention.head_count"))
  dim = int(_field(reader, p + "embedding_length"))
  vocab = _field(reader, p + "vocab_size") or len(reader.fields["tokenizer.ggml.tokens"].data)
  scaling, factors = None, None
  tensors = {t.name: t for t in reader.tensors}
  tensor_names = set(tensors)
  head_dim = int(_field(reader, p + "rope.dimension_count", dim // n_heads))
  scaling_type = _field(reader, p + "rope.scaling.type")
  if "rope_freqs.weight" in tensors:  # Llama-3.1/3.2: llama.cpp divides each rotary frequency by these factors
    entry = tensor_table(reader)["tensors"]["rope_freqs.weight"]
    factors = tuple(float(x) for x in _dequantize(path, "rope_freqs.weight", entry).reshape(-1))
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
      tie_embeddings="output.weight" not in tensor_names, qkv_bias=arch == "qwen2",
      name=str(_field(reader, "general.name", f"gguf-{arch}")))


def unpermute_qk(w_OxI: np.ndarray, n_heads: int) -> np.ndarray:
  """Undo llama.cpp's row permutation of q/k weights (interleaved rotary pairs -> Hugging Face's halves layout)."""
  out, rest = w_OxI.shape[0], w_OxI.shape[1:]
  return w_OxI.reshape(n_heads, out // n_heads // 2, 2, *rest).swapaxes(1, 2).reshape(w_OxI.shape)


def tensor_table(reader) -> dict[str, Any]:
  """The architecture and where each tensor's bytes lie in the file, as plain data: enough to read the weights again
  without parsing the metadata (for a 150k-token vocabulary the reader spends most of its time there)."""
  return {"arch": _field(reader, "general.architecture"),
          "tensors": {t.name: {"offset": int(t.data_offset), "type": int(t.tensor_type),
                               "shape": [int(d) for d in t.data.shape], "dtype": t.data.dtype.str,
                               "logical_shape": [int(d) for d in reversed(t.shape)]} for t in reader.tensors}}


_CHUNK_ELEMENTS = 1 << 22  # elements dequantized per task: large enough that numpy, not Python, takes the time


def _dequantize(path: str, name: str, entry: dict[str, Any], pool=None) -> np.ndarray:
  """One tensor as float32 numpy, in the file's row-major shape ([out, in] for matrices), by the gguf package.

  A quantized tensor goes through its type's block dequantizer in chunks of rows, spread over `pool`'s threads:
  numpy releases the GIL inside them, and large chunks keep Python's overhead small (the package's own `dequantize`
  works 16 rows at a time). The values are the package's, bit for bit (tests/test_gguf.py).
  """
  from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, quants  # pylint: disable=import-outside-toplevel
  qtype = GGMLQuantizationType(entry["type"])
  logical = entry["logical_shape"]
  try:
    raw = np.memmap(path, dtype=np.dtype(entry["dtype"]), mode="r", offset=entry["offset"], shape=tuple(entry["shape"]))
    blocks = getattr(quants, qtype.name, None)
    if qtype in (GGMLQuantizationType.F32, GGMLQuantizationType.F16) or pool is None or not hasattr(
        blocks, "dequantize_blocks"):
      w = np.asarray(quants.dequantize(raw, qtype), np.float32)
    else:
      block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
      rows = raw.reshape(-1, raw.shape[-1])
      per_row = rows.shape[1] // block_bytes * block_elems
      w = np.empty((rows.shape[0], per_row), np.float32)
      step = max(1, _CHUNK_ELEMENTS // per_row)

      def run(i):
        part = np.asarray(rows[i:i + step]).reshape(-1, block_bytes)
        w[i:i + step] = blocks.dequantize_blocks(part).reshape(-1, per_row)
      list(pool.map(run, range(0, rows.shape[0], step)))
  except Exception as e:
    raise UserError(f"{path}: cannot read or dequantize {name} ({qtype.name}: {e})",
                    "the file is truncated, or holds a quantization the gguf package does not read (it reads F32, "
                    "F16, BF16, Q4_0/1, Q5_0/1, Q8_0 and the K-quants): re-download or re-export it") from None
  return w.reshape(logical if len(logical) > 1 else -1)


def read_params(path: str, table: dict[str, Any], cfg: ModelConfig, dtype=np.float32) -> dict[str, Any]:
  """Every tensor dequantized into the model's stacked parameter layout (weights as [in, out]), as jax arrays.

  Dequantizing runs on the host, one thread per core; each stacked array then moves to the device, where the
  [out, in] -> [in, out] transpose runs (XLA's is several times faster than numpy's on a CPU). llama.cpp permutes the
  q/k rows of 'llama' files only (its rotary pairs are interleaved there); 'qwen2' files keep Hugging Face's layout
  (llama.cpp's NEOX rope), so their rows are read as stored.
  """
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  tensors, arch = table["tensors"], table["arch"]
  pool = concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1)

  def get(name: str) -> np.ndarray:
    if name not in tensors:
      raise UserError(f"{path} has no tensor {name!r}", f"the file is incomplete; supported: {SUPPORTED}")
    return _dequantize(path, name, tensors[name], pool)

  def on_device(x: np.ndarray, transpose: bool):
    x = jnp.asarray(x, dtype)
    return _swap_last(x) if transpose else x

  layer_names = {
      "attn_norm_LxD": ("attn_norm", False), "wq_LxDxHE": ("attn_q", True), "wk_LxDxKE": ("attn_k", True),
      "wv_LxDxKE": ("attn_v", True), "wo_LxHExD": ("attn_output", True), "mlp_norm_LxD": ("ffn_norm", False),
      "w_gate_LxDxF": ("ffn_gate", True), "w_up_LxDxF": ("ffn_up", True), "w_down_LxFxD": ("ffn_down", True)}
  if cfg.qkv_bias:
    layer_names.update(bq_LxHE=("attn_q", False), bk_LxKE=("attn_k", False), bv_LxKE=("attn_v", False))
  layers = {}
  with pool:
    for key, (gname, is_matrix) in layer_names.items():
      stacked = None
      for i in range(cfg.n_layers):
        w = get(f"blk.{i}.{gname}.{'bias' if key.startswith('b') else 'weight'}")  # [out, in], as the file has it
        if arch == "llama" and gname in ("attn_q", "attn_k"):
          w = unpermute_qk(w, cfg.n_heads if gname == "attn_q" else cfg.n_kv_heads)
        if stacked is None:
          stacked = np.empty((cfg.n_layers, *w.shape), dtype)
        stacked[i] = w
      layers[key] = on_device(stacked, is_matrix)
      del stacked
    params = {"embed_VxD": on_device(get("token_embd.weight"), False), "layers": layers,
              "final_norm_D": on_device(get("output_norm.weight"), False)}
    if not cfg.tie_embeddings:
      params["lm_head_DxV"] = on_device(get("output.weight"), True)
  return params


def _swap_last(x):
  import jax  # pylint: disable=import-outside-toplevel
  return jax.jit(lambda a: a.swapaxes(-1, -2))(x)


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
  """(config, params, tokenizer spec, tensor table) of a GGUF file; the table reads the weights again later."""
  reader = _open(path)
  cfg = read_config(reader, path)
  spec = read_tokenizer_spec(reader)  # before the weights: an unsupported tokenizer fails at once
  table = tensor_table(reader)
  del reader
  return cfg, read_params(path, table, cfg, dtype), spec, table
