"""What the default choice rule costs on latents: `label` with it and with `--select_margin=0`, timed on the same ones.

  python experiments/real_features/rule_speed.py [--run=runs/sae] [--first=32] [--repeats=3]

The README's SAE command keeps `--select_margin=0` (the lowest validation loss): on the 200 sampled latents the
default rule, written to name categories, separates no better (0.669 against 0.678). This measures its time. Each run
is its own `python -m tokenlabel_jax.label` process from an empty output directory, on the sample's first latents
(real_features.latent_sample), with the SAE command's other flags; the two settings alternate, `--repeats` times each.
Reported: the median over repeats of the summed per-feature wall time (result.json `wall_time_s`: the labeling, not
the model load) and of the process's wall time, and their ratios, default over `--select_margin=0`. Writes
experiments/results/real_features_rule_speed.{md,json}.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from experiments.real_features import real_features  # pylint: disable=g-import-not-at-top

SETTINGS = {"default rule": [], "--select_margin=0": ["--select_margin=0"]}
FLAGS = ["--model=smollm2-135m-instruct", "--features_per_batch=16", "--prompt_memo_gb=6", "--noplots"]


def one_run(features: str, out: str, extra: list[str]) -> tuple[float, float]:
  """(summed per-feature wall time, process wall time) of one `label` run from an empty output directory."""
  t = time.perf_counter()
  subprocess.run([sys.executable, "-m", "tokenlabel_jax.label", f"--features={features}", f"--output_dir={out}",
                  *FLAGS, *extra], check=True, stdout=subprocess.DEVNULL)
  wall = time.perf_counter() - t
  per_feature = [json.load(open(f))["wall_time_s"] for f in glob.glob(os.path.join(out, "*", "result.json"))]
  return sum(per_feature), wall


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--run", default="runs/sae", help="the SAE run (python -m tokenlabel_jax.sae)")
  ap.add_argument("--first", type=int, default=32, help="the sample's first N latents")
  ap.add_argument("--repeats", type=int, default=3)
  args = ap.parse_args()
  export = os.path.join(args.run, "export.json")
  if not os.path.exists(export):
    sys.exit(f"No {export}: train and export the SAE first (python -m tokenlabel_jax.sae --output_dir={args.run}).")
  with open(export) as f:
    names = sorted(json.load(f)["latents"])
  sample = real_features.latent_sample(names, 200)[:args.first]
  times = {k: [] for k in SETTINGS}
  with tempfile.TemporaryDirectory() as tmp:
    features = os.path.join(tmp, "latents")
    os.makedirs(features)
    for name in sample:
      os.symlink(os.path.abspath(os.path.join(args.run, "latents", name + ".jsonl")),
                 os.path.join(features, name + ".jsonl"))
    for rep in range(args.repeats):
      for i, (setting, extra) in enumerate(SETTINGS.items()):
        times[setting].append(one_run(features, os.path.join(tmp, f"out{rep}_{i}"), extra))
        print(f"repeat {rep + 1}, {setting}: {times[setting][-1][0]:.1f} s labeling, {times[setting][-1][1]:.1f} s "
              "wall", flush=True)
  rows = [{"setting": k, "latents": len(sample), "labeling s (median)": statistics.median(t[0] for t in v),
           "wall s (median)": statistics.median(t[1] for t in v), "runs": len(v)} for k, v in times.items()]
  ratio = {k: rows[0][k] / rows[1][k] for k in ("labeling s (median)", "wall s (median)")}
  common.write_table("real_features_rule_speed", rows, list(rows[0]),
                     "What the default choice rule costs on latents",
                     f"The sample's first {len(sample)} latents, `label` with {' '.join(FLAGS)}, each run its own "
                     f"process from an empty output directory, the settings alternating. Default over "
                     f"--select_margin=0: {ratio['labeling s (median)']:.2f}x the labeling time, "
                     f"{ratio['wall s (median)']:.2f}x the wall time (model load included).",
                     summary={"rows": rows, "ratio": ratio})


if __name__ == "__main__":
  main()
