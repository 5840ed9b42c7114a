"""Decoding with the explicit KV cache: greedy tokens equal transformers' `generate` on the same weights (tiny random
Llama and Qwen2; marker `qwen`: the packaged 0.5B model), prompts of different lengths in one batch, stop tokens,
and sampling's temperature."""

from __future__ import annotations

import numpy as np
import pytest

import helpers
from tokenlabel_jax import generation
from tokenlabel_jax.config import ModelConfig
from tokenlabel_jax.loading import load_model


def _reference_greedy(torch_model, prompt, max_new, stop=None):
  import torch
  torch.set_num_threads(1)
  with torch.no_grad():
    out = torch_model.generate(torch.as_tensor([prompt]), max_new_tokens=max_new, do_sample=False,
                               eos_token_id=stop, pad_token_id=0)
  return out[0, len(prompt):].tolist()


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def tiny_pair(request, tmp_path_factory):
  import torch
  from transformers import Qwen2Config, Qwen2ForCausalLM
  path = str(tmp_path_factory.mktemp(request.param))
  if request.param == "llama":
    cfg = ModelConfig.tiny()
    ref = helpers.write_hf_llama(path, cfg, seed=5)
  else:
    cfg = ModelConfig.tiny(qkv_bias=True, rope_scaling=None, rope_theta=1e6)
    torch.manual_seed(5)
    ref = helpers.randomize_(Qwen2ForCausalLM(Qwen2Config(**cfg.to_hf())), 5).eval()
    ref.save_pretrained(path)
    helpers.word_tokenizer().save_pretrained(path)
  return load_model(path, use_cache=False, verbose=False), ref.eval()


def test_greedy_tokens_equal_transformers_generate(tiny_pair):
  m, ref = tiny_pair
  rng = np.random.default_rng(0)
  prompts = [list(rng.integers(3, m.cfg.vocab_size, n)) for n in (5, 17, 1, 40)]  # one batch, left-padded
  ours = generation.generate(m.params, m.cfg, prompts, max_new=12, batch=4)
  for p, o in zip(prompts, ours):
    assert o == _reference_greedy(ref, p, 12), p


def test_a_row_stops_at_its_stop_token_and_the_others_go_on(tiny_pair):
  m, ref = tiny_pair
  rng = np.random.default_rng(1)
  prompts = [list(rng.integers(3, m.cfg.vocab_size, n)) for n in (6, 9)]
  free = generation.generate(m.params, m.cfg, prompts, max_new=10)
  stop = free[0][3]  # the 4th token of row 0's own continuation
  stopped = generation.generate(m.params, m.cfg, prompts, max_new=10, stop_ids=[stop])
  first = free[0].index(stop)
  assert stopped[0] == free[0][:first + 1]
  assert stopped[1] == (free[1][:free[1].index(stop) + 1] if stop in free[1] else free[1])
  assert stopped[0] == _reference_greedy(ref, prompts[0], 10, stop=stop)


def test_samples_share_one_prefill_and_the_first_is_greedy(tiny_pair):
  m, _ = tiny_pair
  prompts = [[5, 6, 7, 8], [9, 10, 11]]
  greedy = generation.generate(m.params, m.cfg, prompts, max_new=8)
  several = generation.generate(m.params, m.cfg, prompts, max_new=8, temperature=[0.0, 5.0, 5.0], seed=1)
  assert len(several) == 6 and several[0] == greedy[0] and several[3] == greedy[1]  # prompt-major
  assert several[1] != several[2] or several[4] != several[5]  # the sampled rows differ


def test_sampling_follows_the_temperature(tiny_pair):
  m, _ = tiny_pair
  prompt = [[5, 6, 7, 8]]
  greedy = generation.generate(m.params, m.cfg, prompt, max_new=8)
  cold = generation.generate(m.params, m.cfg, prompt, max_new=8, temperature=1e-4, seed=3)
  hot = [generation.generate(m.params, m.cfg, prompt, max_new=8, temperature=5.0, seed=s)[0] for s in range(4)]
  assert cold == greedy
  assert len({tuple(h) for h in hot}) > 1  # different seeds, different samples
  assert generation.generate(m.params, m.cfg, prompt, max_new=8, temperature=5.0, seed=2)[0] == hot[2]


@pytest.mark.qwen
def test_packaged_qwen_greedy_equals_transformers():
  """On the real 0.5B instruct model through its chat template: the same greedy answer token for token."""
  import os
  import torch
  from transformers import AutoModelForCausalLM
  from tokenlabel_jax.loading import embedded
  m = load_model("qwen2.5-coder-0.5b", verbose=False)
  folder, name = os.path.split(embedded.gguf_path("qwen2.5-coder-0.5b"))
  ref = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
  stop = [m.tokenizer.hf.convert_tokens_to_ids("<|im_end|>")]
  questions = ["Name one kind of fruit.", "What is 12 + 30? Answer with the number.", "Give a one-word label for: "
               "dog, cat, horse, cow."]
  prompts = [m.tokenizer.encode(m.tokenizer.chat([{"role": "user", "content": q}])) for q in questions]
  ours = generation.generate(m.params, m.cfg, prompts, max_new=16, stop_ids=stop, batch=4)
  for p, o in zip(prompts, ours):
    assert o == _reference_greedy(ref, p, 16, stop=stop[0])
