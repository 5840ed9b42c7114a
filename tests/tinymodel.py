"""A tiny random Llama with a character-level tokenizer: every discriminator runs on it in milliseconds."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tokenlabel_jax import model as model_lib
from tokenlabel_jax import tokenizer as tokenizer_lib
from tokenlabel_jax.config import ModelConfig
from tokenlabel_jax.loading import LoadedModel

CHAT = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def char_tokenizer() -> tokenizer_lib.Tokenizer:
  """Byte-level BPE without merges: one token per byte (256 tokens), with a chat template."""
  from tokenizers import Tokenizer, decoders, models, pre_tokenizers
  from transformers import PreTrainedTokenizerFast
  alphabet = pre_tokenizers.ByteLevel.alphabet()
  vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
  raw = Tokenizer(models.BPE(vocab=vocab, merges=[]))
  raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
  raw.decoder = decoders.ByteLevel()
  hf = PreTrainedTokenizerFast(tokenizer_object=raw)
  hf.chat_template = CHAT
  return tokenizer_lib.Tokenizer(hf)


def tiny_model(seed: int = 0, dtype=jnp.float32, **overrides) -> LoadedModel:
  cfg = ModelConfig.tiny(**overrides)
  params = model_lib.init_params(cfg, jax.random.PRNGKey(seed), dtype)
  return LoadedModel(cfg, params, char_tokenizer(), "tiny")
