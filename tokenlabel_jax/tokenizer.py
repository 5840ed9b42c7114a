"""Tokenizers for the discriminator model: built from GGUF metadata (no torch, no hub) or a Hugging Face directory.

Both end as a transformers `PreTrainedTokenizerFast`, so prompts use one interface (`encode`, `decode`, the chat
template) whatever the model's source.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from tokenlabel_jax.errors import UserError

_CONTROL = 3  # llama.cpp token type of special tokens such as <|im_start|>
_USER_DEFINED = 4  # added tokens matched whole but not special, such as Qwen2's <tool_call>


class Tokenizer:
  """A thin wrapper that keeps the few operations prompts need, and the human-readable form of each token."""

  def __init__(self, hf_tokenizer):
    self.hf = hf_tokenizer
    self.vocab_size = len(hf_tokenizer)

  def encode(self, text: str) -> list[int]:
    return list(self.hf.encode(text, add_special_tokens=False))

  def decode(self, ids: Sequence[int]) -> str:
    return self.hf.decode(list(ids))

  def token_str(self, token_id: int) -> str:
    """The text a token stands for (byte-level markers decoded): ' animal', not 'Ġanimal'."""
    return self.hf.decode([int(token_id)])

  def raw_token(self, token_id: int) -> str:
    return self.hf.convert_ids_to_tokens(int(token_id))

  def chat(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    if not getattr(self.hf, "chat_template", None):
      raise UserError("this model's tokenizer has no chat template",
                      "use a discriminator template without chat formatting, or an instruct model")
    return self.hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

  @property
  def has_chat_template(self) -> bool:
    return bool(getattr(self.hf, "chat_template", None))


# Split patterns per GGUF `tokenizer.ggml.pre`, as llama.cpp and transformers' GGUF conversion split text before
# byte-level BPE. Llama-3 groups digits in threes and keeps letters after an apostrophe/punctuation together.
_LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                   r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# Qwen2 differs from Llama-3 in one place: every digit alone (\p{N}, not \p{N}{1,3}).
_QWEN2_PATTERN = _LLAMA3_PATTERN.replace(r"\p{N}{1,3}", r"\p{N}")
# "smollm": every digit alone, then GPT-2's pattern (SmolLM2's tokenizer.json; its vocabulary has no digit merges).
# "gpt2": GPT-2's pattern.
GGUF_PRE_TOKENIZERS = ("gpt2", "smollm", "llama-bpe", "llama3", "llama-v3", "qwen2")


def _gguf_pre_tokenizer(pre: str | None):
  from tokenizers import Regex, pre_tokenizers  # pylint: disable=import-outside-toplevel
  if pre == "gpt2":
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
  if pre == "smollm":
    return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
  if pre in ("llama-bpe", "llama3", "llama-v3", "qwen2"):
    pattern = _QWEN2_PATTERN if pre == "qwen2" else _LLAMA3_PATTERN
    return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
  raise UserError(f"GGUF pre-tokenizer {pre!r} (tokenizer.ggml.pre) is not supported",
                  f"supported: {', '.join(GGUF_PRE_TOKENIZERS)}; for another model load its Hugging Face directory "
                  "(config.json + safetensors + tokenizer.json) instead")


def from_gguf_spec(spec: dict[str, Any]) -> Tokenizer:
  """Byte-level BPE from the token list and merges stored in a GGUF file, split as its `pre` type says."""
  from tokenizers import (  # pylint: disable=import-outside-toplevel
      AddedToken, Tokenizer as RawTokenizer, decoders, models, normalizers)
  from transformers import PreTrainedTokenizerFast  # pylint: disable=import-outside-toplevel

  pre_tokenizer = _gguf_pre_tokenizer(spec.get("pre"))  # before the slow part: an unsupported file fails at once
  tokens = spec["tokens"]
  vocab = {t: i for i, t in enumerate(tokens)}
  merges = [tuple(m.split(" ", 1)) for m in spec["merges"]]
  raw = RawTokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
  raw.pre_tokenizer = pre_tokenizer
  if spec.get("pre") == "qwen2":  # Qwen2's own tokenizer composes text to NFC first (a GGUF does not record it)
    raw.normalizer = normalizers.NFC()
  raw.decoder = decoders.ByteLevel()
  specials = [t for t, ty in zip(tokens, spec["token_types"]) if ty == _CONTROL]
  kwargs = {}
  if spec.get("bos_id") is not None:
    kwargs["bos_token"] = tokens[spec["bos_id"]]
  if spec.get("eos_id") is not None:
    kwargs["eos_token"] = tokens[spec["eos_id"]]
  hf = PreTrainedTokenizerFast(tokenizer_object=raw, **kwargs)
  hf.add_special_tokens({"additional_special_tokens": specials})
  added = [AddedToken(t, normalized=False, special=False) for t, ty in zip(tokens, spec["token_types"])
           if ty == _USER_DEFINED]
  if added:
    hf.add_tokens(added)
  if spec.get("chat_template"):
    hf.chat_template = spec["chat_template"]
  return Tokenizer(hf)


def from_hf_dir(path: str) -> Tokenizer:
  from transformers import AutoTokenizer  # pylint: disable=import-outside-toplevel
  if not any(os.path.exists(os.path.join(path, f)) for f in ("tokenizer.json", "tokenizer.model")):
    raise UserError(f"{path} has no tokenizer.json or tokenizer.model",
                    "copy the model's tokenizer files into the directory")
  try:
    return Tokenizer(AutoTokenizer.from_pretrained(path, local_files_only=True))
  except Exception as e:
    raise UserError(f"cannot load the tokenizer in {path} ({type(e).__name__}: {e})",
                    "check tokenizer.json / tokenizer_config.json") from None
