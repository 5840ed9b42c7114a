"""How fast the explainer's decoding runs: tokens per second of `generation.generate` on this host.

  python experiments/explainer/generation_speed.py --model qwen2.5-coder-1.5b

For batches of 1 and 8 prompts of about 600 tokens (the size of an explainer prompt: 30 contexts of 23 tokens), the
prefill rate (prompt tokens per second) and the decode rate (new tokens per second, every row decoding 32 tokens: no
stop token), median of 3 runs after one that compiles. Decoding reads every weight once per step, so it is bound by
memory bandwidth and gains almost linearly from rows decoded together; the prefill is bound by the matmul rate.
Writes experiments/results/generation_speed_<model>.{json,md}.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top


def timed(fn, reps: int = 3) -> float:
  fn()  # compiles
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def main():
  args, m, _ = common.setup("generation_speed", __doc__, **{
      "--prompt_tokens": dict(type=int, default=600), "--new_tokens": dict(type=int, default=32),
      "--reps": dict(type=int, default=3)})
  from tokenlabel_jax import generation  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  rows = []
  for batch in (1, 8):
    prompts = [list(rng.integers(100, 5000, args.prompt_tokens)) for _ in range(batch)]
    prefill = timed(lambda: generation.generate(m.params, m.cfg, prompts, max_new=1, batch=batch), args.reps)
    full = timed(lambda: generation.generate(m.params, m.cfg, prompts, max_new=args.new_tokens, batch=batch),
                 args.reps)
    decode_s = max(full - prefill, 1e-9)
    rows.append({"model": m.cfg.name, "batch": batch, "prompt tokens": args.prompt_tokens,
                 "new tokens": args.new_tokens, "prefill s": prefill,
                 "prefill tokens/s": batch * args.prompt_tokens / prefill, "decode s": decode_s,
                 "decode tokens/s": batch * (args.new_tokens - 1) / decode_s, "total s": full})
    print(rows[-1], flush=True)
  name = args.model or "smollm2-135m-instruct"
  common.write_table(
      f"generation_speed_{os.path.basename(name.rstrip('/'))}", rows,
      ["batch", "prompt tokens", "new tokens", "prefill s", "prefill tokens/s", "decode s", "decode tokens/s",
       "total s"],
      f"Generation speed, {m.cfg.name}",
      "Greedy decoding with the explicit KV cache (`tokenlabel_jax/generation.py`), float32, medians of "
      f"{args.reps} runs after a compiling one; decode = the run with {args.new_tokens} new tokens minus the run "
      "with 1.", summary={"rows": rows})


if __name__ == "__main__":
  main()
