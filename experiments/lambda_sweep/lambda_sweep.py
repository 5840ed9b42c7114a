"""The λ trade-off (the paper's second open question): held-out score against naturalness, per λ, on the naming
benchmark's categories and the paper's four features.

  python experiments/lambda_sweep/lambda_sweep.py --split tune --limit 30    # choose λ here (the tuning half)
  python experiments/lambda_sweep/lambda_sweep.py --split test --limit 30    # report here
  python experiments/lambda_sweep/lambda_sweep.py --split paper              # animal, mammal, chinese, number
  python experiments/lambda_sweep/lambda_sweep.py --split tune --analyze     # tables + plot from the saved sweeps

Per feature, one run of `tokenlabel_jax.sweep.lambda_sweep` (every λ of --values at once, λ_ent = λ_kl, annealed as
by default) with the namer and 300 steps; each λ's answer is the optimizer's own (the best seed's most probable
token), before any choice among candidates, so the figures show what λ does to the method itself. The launcher's
default label for the namer comes from the exact scan and the coverage rule, which λ does not touch.
Rule fixed before any run: the λ that names the category most often on the tuning categories (ties: the higher
median held-out AUC) is reported on the test categories beside λ = 0.2 (the default) and λ = 0.
Saved per feature under experiments/runs/lambda_sweep/<split>/; results experiments/results/lambda_sweep_<split>.*.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top

VALUES = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def _features(split: str, limit: int) -> list[dict]:
  if split == "paper":
    return [{"name": k, "names": v, "path": os.path.join(common.DATA, k + ".jsonl")} for k, v in common.PAPER.items()]
  return common.categories(split)[:limit or None]


def run(split: str, limit: int, out: str, values=VALUES) -> None:
  from absl import logging  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import data as data_lib, discriminators as disc_lib  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import naming, sweep  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.WARNING)
  m, disc, lcfg = load_model("smollm2-135m-instruct"), disc_lib.get("namer"), LabelConfig()
  for spec in _features(split, limit):
    path = os.path.join(out, spec["name"] + ".json")
    if os.path.exists(path):
      continue
    t0 = time.time()
    f = data_lib.load_features(spec["path"])[0]
    rows = sweep.lambda_sweep(m, f, disc, lcfg, sweep.tied_grid(values))
    for r in rows:
      r["names"] = naming.names_category(r["label"], spec["names"])
    with open(path + ".tmp", "w") as fh:
      json.dump({"name": spec["name"], "names": spec["names"], "rows": rows, "seconds": time.time() - t0}, fh)
    os.replace(path + ".tmp", path)
    print(f"{spec['name']}: " + ", ".join(f"{r['lam_kl']:g} {r['label']!r}" for r in rows)
          + f" ({time.time() - t0:.0f}s)", flush=True)


def analyze(split: str, out: str) -> dict:
  from tokenlabel_jax import sweep  # pylint: disable=import-outside-toplevel
  feats = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, "*.json")))]
  lams = [r["lam_kl"] for r in feats[0]["rows"]]
  table = []
  for i, lam in enumerate(lams):
    rows = [f["rows"][i] for f in feats]
    table.append({"λ (ent = kl)": lam, "names": sum(r["names"] for r in rows), "of": len(rows),
                  "median heldout AUC": float(np.median([r["heldout_auc"] for r in rows])),
                  "median naturalness": float(np.median([r["naturalness"] for r in rows])),
                  "median top p": float(np.median([r["top_p"] for r in rows])),
                  "labels": ", ".join(repr(r["label"]) for r in rows[:6]) + (" ..." if len(rows) > 6 else "")})
  png = os.path.join(common.RESULTS, f"lambda_sweep_{split}.png")
  sweep.plot({f["name"]: f["rows"] for f in feats}, png,
             f"λ sweep, namer, {split} ({len(feats)} features): each λ's own label")
  best = max(table, key=lambda r: (r["names"], r["median heldout AUC"]))
  notes = (f"Per feature: {np.median([f['seconds'] for f in feats]):.0f} s median for all {len(lams)} λ at once "
           f"(2-core CPU). Most names at λ = {best['λ (ent = kl)']:g} ({best['names']} of {best['of']}). "
           f"Plot: experiments/results/lambda_sweep_{split}.png. {_shipped(split, [f['name'] for f in feats])}")
  md = common.write_table(f"lambda_sweep_{split}", table,
                          ["λ (ent = kl)", "names", "of", "median heldout AUC", "median naturalness", "median top p",
                           "labels"],
                          f"The λ trade-off: each λ's own label, namer, {split} ({len(feats)} features)", notes,
                          command=f"python experiments/lambda_sweep/lambda_sweep.py --split {split} --analyze",
                          summary={"best_lambda": best["λ (ent = kl)"], "features": [f["name"] for f in feats]})
  print(md)
  return best


def _shipped(split: str, names: list[str]) -> str:
  """The launcher's default (exact scan + coverage rule) and the exact scan on the same categories, from the naming
  benchmark's saved results."""
  path = os.path.join(common.RESULTS,
                      {"tune": "naming_tune_namer.json", "test": "naming_test_scan.json"}.get(split, ""))
  if split not in ("tune", "test") or not os.path.exists(path):
    return ""
  by = {r["category"]: r for r in json.load(open(path))["rows"]}
  rows = [by[n] for n in names if n in by]
  return (f"On the same {len(rows)} categories the launcher's default (exact scan + coverage rule, no gradient) names "
          f"{sum(r['names'] for r in rows)}, the exact scan alone {sum(r['scan names'] for r in rows)} "
          f"({os.path.relpath(path, common.HERE)}).")


if __name__ == "__main__":
  import argparse
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--split", default="tune", help="tune, test or paper")
  ap.add_argument("--limit", type=int, default=30)
  ap.add_argument("--analyze", action="store_true")
  a = ap.parse_args()
  out_dir = os.path.join(common.HERE, "runs", "lambda_sweep", a.split)
  os.makedirs(out_dir, exist_ok=True)
  if a.analyze:
    analyze(a.split, out_dir)
  else:
    run(a.split, a.limit, out_dir)
