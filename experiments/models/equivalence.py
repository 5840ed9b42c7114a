"""Our JAX forward and tokenizer against transformers on the packaged Qwen2.5 models (and the embedded SmolLM2): the
figures behind tests/test_qwen2.py's bars, recorded.

  python experiments/models/equivalence.py      # needs the test extras (torch); about 6 minutes

For each model: the max |logit difference| in float32 against transformers' Qwen2ForCausalLM / LlamaForCausalLM
loading the same GGUF file, over the prompts of tests/test_qwen2.py (prose, code, digits, CJK, a chat turn,
whitespace runs; nothing was tuned on them), and how many of its 300+ tokenizer strings tokenize identically.
Writes experiments/results/models_equivalence.{json,md}.
"""

from __future__ import annotations

import gc
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from experiments import common  # pylint: disable=g-import-not-at-top
import helpers  # pylint: disable=g-import-not-at-top
import test_qwen2  # pylint: disable=g-import-not-at-top

MODELS = ["smollm2-135m-instruct", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]


def measure(name: str) -> dict:
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  from transformers import AutoModelForCausalLM, AutoTokenizer  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import model as M  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.loading import embedded, load_model  # pylint: disable=import-outside-toplevel
  t0 = time.time()
  ours = load_model(name, verbose=False)
  folder, file = os.path.split(embedded.gguf_path(name))
  ref = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32).eval()
  ref_tok = AutoTokenizer.from_pretrained(folder, gguf_file=file)
  diffs, scales, argmax = [], [], []
  for prompt in test_qwen2.PROMPTS:
    ids = np.asarray([ours.tokenizer.encode(prompt)])
    a = np.asarray(M.forward_tokens(ours.params, ours.cfg, jnp.asarray(ids))[0])
    b = helpers.torch_logits(ref, ids)
    diffs.append(float(np.abs(a - b).max()))
    scales.append(float(np.abs(b).max()))
    argmax.append(float((a.argmax(-1) == b.argmax(-1)).mean()))
  strings = test_qwen2.tokenizer_strings()
  same = sum(ours.tokenizer.encode(s) == ref_tok.encode(s, add_special_tokens=False) for s in strings)
  del ref
  gc.collect()
  return {"model": name, "max_abs_logit_diff": max(diffs), "per_prompt": diffs, "max_abs_logit": max(scales),
          "argmax_agreement": float(np.mean(argmax)), "prompt_tokens": int(sum(len(ours.tokenizer.encode(p))
                                                                                for p in test_qwen2.PROMPTS)),
          "tokenizer_strings": len(strings), "tokenized_identically": same, "wall_s": round(time.time() - t0, 1)}


def main():
  rows = [measure(n) for n in (sys.argv[1:] or MODELS)]
  notes = ("Float32 on a 2-core CPU. The bar in tests/test_qwen2.py is 1e-3 (test_packaged_qwen_matches_transformers) "
           "and identical tokens on every string (test_packaged_qwen_tokenizes_as_transformers).")
  common.write_table("models_equivalence", rows, ["model", "max_abs_logit_diff", "max_abs_logit", "argmax_agreement",
                                                  "prompt_tokens", "tokenized_identically", "tokenizer_strings",
                                                  "wall_s"],
                     "Our forward and tokenizer against transformers, same GGUF file", notes)


if __name__ == "__main__":
  main()
