"""The declared runs of experiments/context/README.md and their table: does a discriminator that reads the context
name a feature that depends on it, where the word-only namer cannot?

  python experiments/context/context.py
    # 4 label runs (each resumes), then experiments/results/context_features.{md,json}
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top

MODELS = ("smollm2-135m-instruct", "qwen2.5-coder-1.5b")
DISCRIMINATORS = ("namer", "namer_context")
NAMES = {"food_sense": ["food", "foods", "meat", "dish", "dishes", "meal", "cuisine"],
         "team_sense": ["team", "teams", "club", "franchise"]}
NAME_REF, OTHER_REF = {"food_sense": "food", "team_sense": "team"}, {"food_sense": "animal", "team_sense": "city"}
FLAGS = ["--features=experiments/data/context", "--threshold=0.5", "--negatives=near_miss", "--n_train=48",
         "--n_val=64", "--n_heldout=64", "--reference_labels=food,animal,team,city"]


def run_dir(model: str, disc: str) -> str:
  return os.path.join("runs", f"context_{model}_{disc}")


def main():
  from tokenlabel_jax import naming  # pylint: disable=import-outside-toplevel
  root = os.path.dirname(common.HERE)
  rows = []
  for model in MODELS:
    for disc in DISCRIMINATORS:
      out = run_dir(model, disc)
      cmd = [sys.executable, "-m", "tokenlabel_jax.label", *FLAGS, f"--model={model}", f"--discriminator={disc}",
             f"--output_dir={out}"]
      print(" ".join(cmd[1:]), flush=True)
      subprocess.run(cmd, cwd=root, check=True)
      for feature in NAMES:
        with open(os.path.join(root, out, feature, "result.json"), encoding="utf-8") as f:
          r = json.load(f)
        ref = r["references"]
        scan = min((c for c in r["verification"] if c.get("source") == "scan"), key=lambda c: c["val_loss"],
                   default=None)
        rows.append({"feature": feature, "model": model, "discriminator": disc, "label": r["label"],
                     "best candidate": r["best_candidate"],
                     "names": naming.names_category(r["label"], NAMES[feature]) if r["label"] else False,
                     "held-out AUC": r["heldout"]["auc"], "lower 95%": r["heldout_auc_lower95"],
                     "name's AUC": ref[NAME_REF[feature]]["auc"], "other sense's AUC": ref[OTHER_REF[feature]]["auc"],
                     "exact scan": scan["label"] if scan else None, "scan AUC": scan["auc"] if scan else None,
                     "wall s": r["wall_time_s"]})
  named = {f"{m} {d}": sum(r["names"] for r in rows if r["model"] == m and r["discriminator"] == d)
           for m in MODELS for d in DISCRIMINATORS}
  notes = ("Rules declared before the runs (experiments/context/README.md). `name's AUC` is the held-out AUC of "
           "the label `food` (food_sense) or `team` (team_sense) under the same discriminator; `other sense's AUC` "
           "that of `animal` or `city`. Named, of 2: " + ", ".join(f"{k} {v}" for k, v in named.items()) + ".")
  common.write_table("context_features", rows, list(rows[0]), "Features that depend on the context, not on the word",
                     notes, summary={"named": named})


if __name__ == "__main__":
  main()
