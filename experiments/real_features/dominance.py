"""Where can a one-word label beat the top token? The 200 latents split by how much one word carries them.

  python experiments/real_features/dominance.py [RESULT ...]   (default: the four 200-latent runs of the plan)
  python experiments/real_features/dominance.py --whole_sae      (the description on every latent of the SAE)

Declared before the 135M default's run (plan_default_dominance.md). For each latent of a stored real_features.py
run, its dominance d: the share of its positive training occurrences (activation above 0, the training records of
`data.assign_splits`, as the top-token baseline reads them) whose word (`data.word_of`) is that run's top token. Two
strata fixed in the plan, d >= 0.5 (one word carries the latent) and d < 0.5 (none does); per stratum the medians
of our label, the top token and the token lookup, and the paired gain of ours over the top token, under the namer
and, where the run has one, the independent scorer. A run pooled from slices (pooled.py) is read from its slices.
Writes experiments/results/real_features_dominance.{md,json}.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import baselines  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import data as data_lib  # pylint: disable=g-import-not-at-top

RUNS = ("real_features_smollm2-135m-instruct", "real_features", "real_features_qwen2.5-coder-0.5b",
        "real_features_qwen2.5-coder-1.5b_ask_all")
CUT = 0.5


def latent_rows(name: str) -> list[dict]:
  """A stored run's latent rows; a pooled run's from the slices it names."""
  with open(os.path.join(common.RESULTS, name + ".json"), encoding="utf-8") as f:
    run = json.load(f)
  if "latents" in run:
    return run["latents"]
  return [r for s in (run.get("summary") or {}).get("slices", {}) for r in latent_rows(s)]


def dominance(words: collections.Counter, top: str) -> float:
  """The share of the positive occurrences whose word is `top`."""
  total = sum(words.values())
  return words[top] / total if total else 0.0


def stratum(rows: list[dict], judge: str) -> dict:
  """Medians and the paired gain over the top token under one judge ("heldout_auc" or "scorer_auc")."""
  rows = [r for r in rows if judge in r and judge in r["baselines"].get("top_token", {})]
  if not rows:
    return {}
  ours = [r[judge] for r in rows]
  top = [r["baselines"]["top_token"][judge] for r in rows]
  gain = [a - b for a, b in zip(ours, top)]
  above, below = sum(g > 0 for g in gain), sum(g < 0 for g in gain)
  return {"n": len(rows), "ours": statistics.median(ours), "top token": statistics.median(top),
          "median gain": statistics.median(gain), "ours above": above, "ours below": below,
          "sign test p": common.sign_test(above, below)}


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("runs", nargs="*", default=list(RUNS), help="result names under experiments/results")
  ap.add_argument("--sae_run", default="runs/sae", help="the SAE run whose latents/ the results labeled")
  ap.add_argument("--name", default="real_features_dominance")
  ap.add_argument("--whole_sae", action="store_true",
                  help="instead: d and the words for half over every exported latent, not the 200 of the sample "
                       "(the top token as baselines.top_token reads it); writes <name>_whole_sae.{md,json}")
  args = ap.parse_args()
  if not os.path.isdir(os.path.join(args.sae_run, "latents")):
    sys.exit(f"No latents under {args.sae_run}: train and export the SAE first (python -m tokenlabel_jax.sae "
             f"--output_dir={args.sae_run}) or pass --sae_run=DIR.")
  missing = [n for n in args.runs if not os.path.exists(os.path.join(common.RESULTS, n + ".json"))]
  if missing and not args.whole_sae:
    sys.exit(f"No result file experiments/results/{missing[0]}.json: run real_features.py with "
             f"--name={missing[0]} first (its command is in experiments/real_features/README.md).")
  if args.whole_sae:
    return whole_sae(args)
  cache, table, summary = {}, [], {}
  for name in args.runs:
    rows = latent_rows(name)
    for r in rows:
      if r["id"] not in cache:
        cache[r["id"]] = baselines.positive_word_counts(
            data_lib.load_features(os.path.join(args.sae_run, "latents", r["id"] + ".jsonl"))[0], 0.0)
    d = {r["id"]: dominance(cache[r["id"]], r["baselines"]["top_token"]["label"]) for r in rows
         if "top_token" in r["baselines"]}
    summary[name] = {"median d": statistics.median(d.values()),
                     "median words for half": statistics.median(baselines.words_for_half(cache[i]) for i in d),
                     "dominance": d}
    for label, keep in ((f"d >= {CUT}", lambda v: v >= CUT), (f"d < {CUT}", lambda v: v < CUT), ("all", None)):
      part = [r for r in rows if r["id"] in d and (keep is None or keep(d[r["id"]]))]
      lookup = [r["token_lookup_auc"] for r in part]
      for judge, judge_name in (("heldout_auc", "namer"), ("scorer_auc", "scorer")):
        s = stratum(part, judge)
        if s:
          table.append({"run": name, "latents": label, "judge": judge_name, **s,
                        "token lookup": statistics.median(lookup) if judge == "heldout_auc" and lookup else ""})
          summary[name][f"{label} {judge_name}"] = s
  notes = ("d: the share of a latent's positive training occurrences whose word is the run's top token (the "
           "commonest word at its 20 strongest peaks). Strata fixed before the 135M default's run "
           "(experiments/real_features/plan_default_dominance.md). Gain: our label's held-out AUC minus the top "
           "token's, latent by latent, on the same held-out examples; the token lookup is not a label. Median d "
           + ", ".join(f"{n} {v['median d']:.2f}" for n, v in summary.items())
           + "; words that make up half of a latent's positive occurrences (a description added after the first look "
           "at d), median " + ", ".join(f"{n} {v['median words for half']:g}" for n, v in summary.items()) + ".")
  common.write_table(args.name, table, ["run", "latents", "judge", "n", "ours", "top token", "median gain",
                                        "ours above", "ours below", "sign test p", "token lookup"],
                     "Where a label can beat the top token: latents by how much one word carries them", notes,
                     summary=summary)


def whole_sae(args) -> None:
  """The description of the sample checked on every latent of the SAE: quartiles of d and of the words for half."""
  folder = os.path.join(args.sae_run, "latents")
  d, half = [], []
  for i, name in enumerate(sorted(os.listdir(folder))):
    feature = data_lib.load_features(os.path.join(folder, name))[0]
    top = baselines.top_token(feature, 0.0)
    words = baselines.positive_word_counts(feature, 0.0)
    if top is None or not words:
      continue
    d.append(dominance(words, top))
    half.append(baselines.words_for_half(words))
    if (i + 1) % 500 == 0:
      print(f"{i + 1} latents", flush=True)
  rows = [{"latents": len(d), "figure": figure, **{f"q{q}": float(np.percentile(v, q)) for q in (10, 25, 50, 75, 90)},
           "share mostly one word": float(np.mean(mostly))}
          for figure, v, mostly in (("d", d, np.asarray(d) >= CUT), ("words for half", half, np.asarray(half) == 1))]
  common.write_table(args.name + "_whole_sae", rows, list(rows[0]),
                     "How many words carry a latent: every latent of the SAE",
                     "d: the top token's share of a latent's positive training occurrences (the top token as the "
                     "baseline reads it, here without a model's one-token filter); words for half: how many of its "
                     "commonest words make up half of them. Mostly one word: d >= 0.5, or one word for half. The "
                     "200-latent sample's medians: d 0.15, 7 words.",
                     summary={"rows": rows})


if __name__ == "__main__":
  main()
