"""Speed and memory of labeling with each packaged model, on this host, against the host's own matmul rate.

  python experiments/models/speed.py --model qwen2.5-coder-1.5b --runs 3
  python experiments/models/speed.py --model smollm2-135m-instruct --runs 3

1. The host's 2048 x 2048 float32 matmul rate (median of 20, numpy through XLA: jnp.dot, as the model runs).
2. The namer's prompt passes alone: 512 distinct "<word> is a kind of" prompts of the concept features run through
   `discriminators.warm_memo` (as a labeling run does) from an empty memo, median of 3; useful GFLOP/s (the layers'
   matrix products for every real token, and the vocabulary product at each prompt's last token; padding not
   counted) and its ratio to the matmul rate.
3. End to end: the README's labeling command on the 26 concept features (`python -m tokenlabel_jax.label
   --features=experiments/data/concepts --model=M`) from a fresh output directory, --runs times, under
   /usr/bin/time -v: wall time, features per hour, peak resident memory; how many labels name the category
   (experiments/naming/naming_concepts.py's judge).
4. The matmul rate again (the host may change under us).

Writes experiments/results/models_speed_<model>.{json,md}.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from experiments import common  # pylint: disable=g-import-not-at-top


def matmul_gflops(n: int = 2048, reps: int = 20) -> float:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), jnp.float32)
  f = jax.jit(lambda x, y: x @ y)
  f(a, a).block_until_ready()
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    f(a, a).block_until_ready()
    times.append(time.perf_counter() - t)
  return 2 * n ** 3 / float(np.median(times)) / 1e9


def flops_per_token(cfg) -> float:
  """The layers' matrix products for one token (2 per multiply-add)."""
  D, HE, KE, F = cfg.dim, cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim, cfg.hidden_dim
  return 2.0 * cfg.n_layers * (D * HE + 2 * D * KE + HE * D + 3 * D * F)


def prompt_pass_rate(m, n_prompts: int = 512, reps: int = 3) -> dict:
  from tokenlabel_jax import data as data_lib, discriminators as disc_lib  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.discriminators.templates import ExampleText  # pylint: disable=import-outside-toplevel
  words = sorted({tok.strip() for path in sorted(os.listdir(os.path.join(common.DATA, "concepts")))
                  for r in data_lib.load_features(os.path.join(common.DATA, "concepts", path))[0].records
                  for tok in r.tokens if tok.strip().isalpha()})
  words = [w for i, w in enumerate(words) if i % max(1, len(words) // n_prompts) == 0][:n_prompts]
  disc = disc_lib.get("namer")
  texts = [[ExampleText(word=w, context=w) for w in words]]
  plans = [disc_lib.token_plan(disc, m.tokenizer, t, 1)[0] for t in texts[0]]
  head = len(os.path.commonprefix(plans))
  tokens = sum(len(p) - head for p in plans)
  flops = tokens * flops_per_token(m.cfg) + len(plans) * 2.0 * m.cfg.dim * m.cfg.vocab_size
  times = []
  for rep in range(reps + 1):  # the first run compiles
    disc_lib.MEMO.clear()
    disc_lib.MEMO.max_bytes = 4 << 30
    t = time.perf_counter()
    disc_lib.warm_memo(m.params, m.cfg, m.tokenizer, disc, texts, keep_cache=False)
    if rep:
      times.append(time.perf_counter() - t)
  sec = float(np.median(times))
  return {"prompts": len(plans), "own_tokens": tokens, "mean_own_tokens": tokens / len(plans),
          "gflop": flops / 1e9, "seconds": sec, "gflops": flops / sec / 1e9, "ms_per_prompt": 1000 * sec / len(plans)}


def end_to_end(model: str, run: int) -> dict:
  out = os.path.join(ROOT, "experiments", "runs", "models_speed", f"{model}_{run}")
  shutil.rmtree(out, ignore_errors=True)
  cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "tokenlabel_jax.label", "--features=experiments/data/concepts",
         f"--output_dir={out}", f"--model={model}"]
  t = time.perf_counter()
  proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
  wall = time.perf_counter() - t
  if proc.returncode:
    raise SystemExit(f"labeling failed:\n{proc.stderr[-3000:]}")
  rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
  judged = subprocess.run([sys.executable, "experiments/naming/naming_concepts.py", "--from_run", out,
                           "--model", model],
                          capture_output=True, text=True, cwd=ROOT, check=False).stdout
  named = re.search(r"(\d+) of 26 labels name the category", judged)
  return {"run": run, "wall_s": round(wall, 1), "features_per_hour": round(26 * 3600 / wall),
          "peak_rss_gb": round(rss_kb / 2 ** 20, 2), "names_category": int(named.group(1)) if named else None,
          "output_dir": os.path.relpath(out, ROOT)}


def main():
  args, m, _ = common.setup("models_speed", __doc__, launcher_steps=True, **{"--runs": dict(type=int, default=3),
                                                                           "--prompts": dict(type=int, default=512)})
  before = matmul_gflops()
  passes = prompt_pass_rate(m, args.prompts)
  model = args.model or m.cfg.name
  del m
  runs = [end_to_end(model, i + 1) for i in range(args.runs)]
  after = matmul_gflops()
  walls = [r["wall_s"] for r in runs]
  summary = {"model": model, "matmul_gflops_before": round(before, 1), "matmul_gflops_after": round(after, 1),
             "prompt_passes": passes, "pass_to_matmul": round(passes["gflops"] / np.mean([before, after]), 3),
             "median_wall_s": float(np.median(walls)), "features_per_hour": round(26 * 3600 / np.median(walls)),
             "max_peak_rss_gb": max(r["peak_rss_gb"] for r in runs), "cpu": _cpu()}
  notes = (f"Host: {summary['cpu']}, 2048² float32 matmul {before:.0f} GFLOP/s before and {after:.0f} after. "
           f"Prompt passes ({passes['prompts']} namer prompts, {passes['mean_own_tokens']:.1f} own tokens each): "
           f"{passes['gflops']:.0f} useful GFLOP/s, **{summary['pass_to_matmul']:.2f}** of the matmul rate, "
           f"{passes['ms_per_prompt']:.0f} ms per prompt. End to end (26 concept features, from nothing but the "
           f"converted-model cache): median **{summary['median_wall_s']:.0f} s = {summary['features_per_hour']} "
           f"features per hour**, peak resident memory {summary['max_peak_rss_gb']} GB.")
  common.write_table(f"models_speed_{model}", runs, ["run", "wall_s", "features_per_hour", "peak_rss_gb",
                                                     "names_category", "output_dir"],
                     f"Labeling speed with {model} (26 concept features)", notes, summary=summary)


def _cpu() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    name = "unknown CPU"
  return f"{name}, {os.cpu_count()} cores"


if __name__ == "__main__":
  main()
