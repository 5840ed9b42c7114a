"""Shared test helpers: a reference Hugging Face Llama written to disk, llama.cpp's q/k permutation, and a file on a
full disk."""

from __future__ import annotations

import errno
import math

import numpy as np

WORDS = ["the", "a", "dog", "cat", "ran", "sat", "on", "mat", "big", "small", "red", "blue", "and", "of", "to"]


def word_tokenizer():
  """A whitespace word-level PreTrainedTokenizerFast with <s>, </s>, <unk> and a chat template."""
  from tokenizers import Tokenizer, models, pre_tokenizers
  from transformers import PreTrainedTokenizerFast
  vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
  raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
  raw.pre_tokenizer = pre_tokenizers.Whitespace()
  tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
  tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
  return tok


def randomize_(torch_model, seed: int):
  """Replaces transformers' small init by O(1) weights (norm gains too), so every tensor visibly matters."""
  import torch
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in sorted(torch_model.named_parameters()):
      if p.ndim == 1:
        p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
      elif "embed_tokens" in name:
        p.copy_(torch.randn(p.shape, generator=g))
      else:
        p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
  return torch_model


def write_hf_llama(path: str, cfg, seed: int = 0, max_shard_size: str = "200KB"):
  """Saves a random transformers LlamaForCausalLM of shape `cfg` (sharded safetensors + tokenizer); returns it."""
  import torch
  from transformers import LlamaConfig, LlamaForCausalLM
  torch.manual_seed(seed)
  model = randomize_(LlamaForCausalLM(LlamaConfig(**cfg.to_hf())), seed).eval()
  model.save_pretrained(path, safe_serialization=True, max_shard_size=max_shard_size)
  word_tokenizer().save_pretrained(path)
  return model


def torch_logits(torch_model, tokens_BxS) -> np.ndarray:
  import torch
  torch.set_num_threads(1)  # two threads spin against JAX's pool and other work on a small shared CPU
  with torch.no_grad():  # np.array copies: torch warns on a read-only JAX buffer
    return torch_model(torch.tensor(np.array(tokens_BxS), dtype=torch.long)).logits.float().numpy()


def llama_cpp_permute(w_OxI: np.ndarray, n_heads: int) -> np.ndarray:
  """convert_hf_to_gguf.py's permutation of q/k rows: each head's two halves become interleaved rotary pairs."""
  return w_OxI.reshape(n_heads, 2, w_OxI.shape[0] // n_heads // 2, *w_OxI.shape[1:]).swapaxes(1, 2).reshape(
      w_OxI.shape)


class FullDiskFile:
  """An opened file that fills the disk when written to: `open` patched to return one shows what a full disk does."""

  def __init__(self, f):
    self.f = f

  def write(self, _):
    raise OSError(errno.ENOSPC, "No space left on device")

  def __enter__(self):
    return self

  def __exit__(self, *a):
    self.f.close()
