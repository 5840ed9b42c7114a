"""Model configuration: one frozen dataclass, one constructor per known model, and readers for HF and GGUF metadata."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from tokenlabel_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class RopeScaling:
  """Llama-3.1 style frequency scaling ("rope_type": "llama3"), applied at every sequence length."""

  factor: float = 8.0
  low_freq_factor: float = 1.0
  high_freq_factor: float = 4.0
  original_max_position: int = 8192


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Shape of a Llama-family decoder. Hashable, so it can be a static argument of jitted functions."""

  vocab_size: int
  dim: int
  n_layers: int
  n_heads: int
  n_kv_heads: int
  hidden_dim: int
  head_dim: int = 0  # 0: dim // n_heads
  norm_eps: float = 1e-5
  rope_theta: float = 10000.0
  rope_scaling: RopeScaling | None = None
  # Per-pair divisors of the rotary frequencies, as llama.cpp stores Llama-3.1/3.2 scaling (GGUF tensor rope_freqs):
  # used instead of rope_scaling when present.
  rope_freq_factors: tuple[float, ...] | None = None
  max_seq_len: int = 2048
  tie_embeddings: bool = False
  # Qwen2: the Llama block with biases on the q, k and v projections (its only difference that changes the forward).
  qkv_bias: bool = False
  name: str = "llama"
  # How the forward runs, not the model's shape: recompute each layer's activations in the backward pass instead of
  # keeping them (about 1/3 more compute, far less step memory: what lets large B x F fit a GPU/TPU).
  remat: bool = False

  def __post_init__(self):
    if self.head_dim == 0:
      object.__setattr__(self, "head_dim", self.dim // self.n_heads)
    if self.n_heads % self.n_kv_heads:
      raise UserError(f"n_heads={self.n_heads} is not a multiple of n_kv_heads={self.n_kv_heads}",
                      "check the model's config.json")

  # Named presets. Shapes only: weights always come from a file.
  @classmethod
  def smollm2_135m(cls) -> ModelConfig:
    return cls(vocab_size=49152, dim=576, n_layers=30, n_heads=9, n_kv_heads=3, hidden_dim=1536,
               rope_theta=100000.0, max_seq_len=8192, tie_embeddings=True, name="smollm2-135m-instruct")

  @classmethod
  def llama3_8b(cls) -> ModelConfig:
    return cls(vocab_size=128256, dim=4096, n_layers=32, n_heads=32, n_kv_heads=8, hidden_dim=14336,
               rope_theta=500000.0, max_seq_len=8192, name="llama-3-8b-instruct")

  @classmethod
  def llama31_8b(cls) -> ModelConfig:
    return dataclasses.replace(cls.llama3_8b(), rope_scaling=RopeScaling(), max_seq_len=131072,
                               name="llama-3.1-8b-instruct")

  @classmethod
  def llama31_70b(cls) -> ModelConfig:
    return cls(vocab_size=128256, dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, hidden_dim=28672,
               rope_theta=500000.0, rope_scaling=RopeScaling(), max_seq_len=131072, name="llama-3.1-70b-instruct")

  @classmethod
  def llama32_1b(cls) -> ModelConfig:
    return cls(vocab_size=128256, dim=2048, n_layers=16, n_heads=32, n_kv_heads=8, hidden_dim=8192,
               rope_theta=500000.0, rope_scaling=RopeScaling(factor=32.0), max_seq_len=131072,
               tie_embeddings=True, name="llama-3.2-1b-instruct")

  @classmethod
  def qwen25_coder_1_5b(cls) -> ModelConfig:
    return cls(vocab_size=151936, dim=1536, n_layers=28, n_heads=12, n_kv_heads=2, hidden_dim=8960, norm_eps=1e-6,
               rope_theta=1000000.0, max_seq_len=32768, qkv_bias=True, name="qwen2.5-coder-1.5b")

  @classmethod
  def qwen25_coder_0_5b(cls) -> ModelConfig:
    return cls(vocab_size=151936, dim=896, n_layers=24, n_heads=14, n_kv_heads=2, hidden_dim=4864, norm_eps=1e-6,
               rope_theta=1000000.0, max_seq_len=32768, qkv_bias=True, name="qwen2.5-coder-0.5b")

  @classmethod
  def tiny(cls, **overrides) -> ModelConfig:
    """A random-weight model for unit tests: Llama-3 shaped (GQA, llama3 rope scaling, large theta, untied)."""
    base = dict(vocab_size=256, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=128,
                rope_theta=500000.0, rope_scaling=RopeScaling(factor=8.0, original_max_position=64),
                max_seq_len=256, name="tiny")
    base.update(overrides)
    return cls(**base)

  @classmethod
  def from_hf(cls, hf: Mapping[str, Any], name: str = "llama") -> ModelConfig:
    """From a Hugging Face config.json dictionary of a LlamaForCausalLM or Qwen2ForCausalLM."""
    archs = hf.get("architectures") or []
    qwen2 = hf.get("model_type") == "qwen2" or "Qwen2ForCausalLM" in archs
    if not qwen2 and hf.get("model_type") != "llama" and "LlamaForCausalLM" not in archs:
      raise UserError(f"model type {hf.get('model_type')!r} ({', '.join(archs) or 'no architectures'}) is not a Llama",
                      "tokenlabel_jax supports LlamaForCausalLM (Llama-2/3/3.1/3.2, SmolLM2, TinyLlama) and "
                      "Qwen2ForCausalLM (Qwen2, Qwen2.5) models")
    if qwen2 and hf.get("use_sliding_window"):
      raise UserError("this Qwen2 model uses sliding-window attention", "only full attention is supported")
    scaling = None
    rs = hf.get("rope_scaling") or hf.get("rope_parameters")
    if rs and (rs.get("rope_type") or rs.get("type")) == "llama3":
      scaling = RopeScaling(factor=float(rs["factor"]), low_freq_factor=float(rs["low_freq_factor"]),
                            high_freq_factor=float(rs["high_freq_factor"]),
                            original_max_position=int(rs["original_max_position_embeddings"]))
    elif rs and (rs.get("rope_type") or rs.get("type")) not in (None, "default"):
      raise UserError(f"rope scaling {rs!r} is not supported", "supported: none/default and llama3")
    theta = hf.get("rope_theta") or (rs or {}).get("rope_theta") or 10000.0
    return cls(vocab_size=int(hf["vocab_size"]), dim=int(hf["hidden_size"]), n_layers=int(hf["num_hidden_layers"]),
               n_heads=int(hf["num_attention_heads"]),
               n_kv_heads=int(hf.get("num_key_value_heads") or hf["num_attention_heads"]),
               hidden_dim=int(hf["intermediate_size"]), head_dim=int(hf.get("head_dim") or 0),
               norm_eps=float(hf.get("rms_norm_eps", 1e-5)), rope_theta=float(theta), rope_scaling=scaling,
               max_seq_len=int(hf.get("max_position_embeddings", 2048)),
               tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
               qkv_bias=qwen2 or bool(hf.get("attention_bias", False)), name=name)

  def to_hf(self) -> dict[str, Any]:
    """The config.json a Hugging Face LlamaForCausalLM (Qwen2ForCausalLM with qkv_bias) would have: tests, export."""
    arch, model_type = ("Qwen2ForCausalLM", "qwen2") if self.qkv_bias else ("LlamaForCausalLM", "llama")
    out = dict(architectures=[arch], model_type=model_type, vocab_size=self.vocab_size,
               hidden_size=self.dim, num_hidden_layers=self.n_layers, num_attention_heads=self.n_heads,
               num_key_value_heads=self.n_kv_heads, intermediate_size=self.hidden_dim, head_dim=self.head_dim,
               rms_norm_eps=self.norm_eps, rope_theta=self.rope_theta, max_position_embeddings=self.max_seq_len,
               tie_word_embeddings=self.tie_embeddings, hidden_act="silu", attention_bias=False, mlp_bias=False,
               bos_token_id=1, eos_token_id=2, torch_dtype="float32")
    if self.rope_scaling is not None:
      out["rope_scaling"] = dict(rope_type="llama3", factor=self.rope_scaling.factor,
                                 low_freq_factor=self.rope_scaling.low_freq_factor,
                                 high_freq_factor=self.rope_scaling.high_freq_factor,
                                 original_max_position_embeddings=self.rope_scaling.original_max_position)
    return out


PRESETS = {
    "smollm2-135m-instruct": ModelConfig.smollm2_135m,
    "llama-3-8b-instruct": ModelConfig.llama3_8b,
    "llama-3.1-8b-instruct": ModelConfig.llama31_8b,
    "llama-3.1-70b-instruct": ModelConfig.llama31_70b,
    "llama-3.2-1b-instruct": ModelConfig.llama32_1b,
    "qwen2.5-coder-1.5b": ModelConfig.qwen25_coder_1_5b,
    "qwen2.5-coder-0.5b": ModelConfig.qwen25_coder_0_5b,
}


def preset(name: str) -> ModelConfig:
  try:
    return PRESETS[name.lower()]()
  except KeyError:
    raise UserError(f"unknown model preset {name!r}",
                    f"use one of {', '.join(PRESETS)} or a local model path") from None
