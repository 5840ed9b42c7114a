"""Compares label-choice rules offline on the probe's candidates (naming_probe.py, beside this file), tuning half
only.

  python experiments/naming/probes/naming_rules.py [--probe experiments/runs/naming_probe/tune.json]

Writes experiments/results/naming_rules.md/.json: for each rule, how many categories' chosen label names the
category, and the median held-out AUC of the chosen single-token labels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

from experiments import common  # pylint: disable=g-import-not-at-top


def pool(cands, extend_top):
  """The candidates a run with `extend_top` would have: singles, and extensions of the best extend_top first tokens."""
  singles = [c for c in cands if len(c["ids"]) == 1]
  firsts = {c["ids"][0] for c in sorted(singles, key=lambda c: c["val_loss"])[:extend_top]}
  return singles + [c for c in cands if len(c["ids"]) == 2 and c["ids"][0] in firsts]


def margin_rule(margin):
  def rule(cs):
    best = min(c["val_loss"] for c in cs)
    near = [c for c in cs if c["val_loss"] <= best + margin]
    return max(near, key=lambda c: c["naturalness"])
  return rule


def auc_rule(delta):
  def rule(cs):
    best = max(c["val_auc"] for c in cs)
    near = [c for c in cs if c["val_auc"] >= best - delta]
    return max(near, key=lambda c: c["naturalness"])
  return rule


def linear_rule(w):
  return lambda cs: min(cs, key=lambda c: c["val_loss"] - w * c["naturalness"])


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--probe", default=os.path.join(common.HERE, "runs", "naming_probe", "tune.json"))
  args = ap.parse_args()
  cats = json.load(open(args.probe))
  rules = {"lowest val loss (scan)": (0, lambda cs: min(cs, key=lambda c: c["val_loss"]))}
  for k in (0, 4, 8, 12):
    rules[f"lowest val loss, extend {k}"] = (k, lambda cs: min(cs, key=lambda c: c["val_loss"]))
    for mg in (0.02, 0.05, 0.1, 0.15, 0.2, 0.3):
      rules[f"margin {mg}, extend {k}"] = (k, margin_rule(mg))
    for d in (0.02, 0.05, 0.1):
      rules[f"val AUC within {d}, extend {k}"] = (k, auc_rule(d))
    for w in (0.02, 0.05, 0.1):
      rules[f"val loss - {w} x naturalness, extend {k}"] = (k, linear_rule(w))
  rows = []
  recall = sum(any(c["names"] for c in cats_i["candidates"]) for cats_i in cats)
  for name, (k, rule) in rules.items():
    chosen = [rule(pool(c["candidates"], k)) for c in cats]
    hits = sum(ch["names"] for ch in chosen)
    aucs = [ch["auc"] for ch in chosen if "auc" in ch]
    rows.append({"rule": name, "names": hits, "of": len(cats), "rate": hits / len(cats),
                 "median held-out AUC (single-token choices)": float(np.median(aucs)) if aucs else float("nan"),
                 "two-token choices": sum(len(ch["ids"]) == 2 for ch in chosen)})
  common.write_table("naming_rules", rows, ["rule", "names", "of", "rate", "median held-out AUC (single-token choices)",
                                            "two-token choices"],
                     f"Label-choice rules on the naming benchmark's tuning half ({len(cats)} categories)",
                     f"A category name is among the candidates for {recall} of {len(cats)} categories (the ceiling "
                     "of any rule on this pool).")


if __name__ == "__main__":
  main()
