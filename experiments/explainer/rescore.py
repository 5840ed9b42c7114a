"""An independent scorer's column for a finished comparison: every method's stored label scored again by another
model's likelihood discriminator, on the same held-out examples.

  python experiments/explainer/rescore.py --set test --model qwen2.5-coder-1.5b --scorer_model smollm2-135m-instruct

compare.py's own scorer column runs the likelihood prompt on the comparison's model (about a minute a label for the
1.5B model on 2 cores, ten hours for the test half), so its test-half run went without it. This reads the labels the
comparison stored (experiments/results/explainer_<set>_<model>.json; for the test half also the combination under
the rule chosen on the tuning half, from explainer_rules_test_<model>.json) and scores each with a smaller model's
likelihood discriminator, a judge none of the methods was optimized against, as real_features.py does for latents.
Resumes from its own result file (features already scored are kept). Writes
experiments/results/explainer_<set>_<model>_scorer_<scorer_model>.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from experiments.explainer import compare, rules  # pylint: disable=g-import-not-at-top

TUNED = "combined (tuned rule)"


def stored_labels(which: str, model: str) -> tuple[list[dict], list[str]]:
  """Per feature, each method's label as the comparison stored it, and the methods in table order."""
  with open(os.path.join(common.RESULTS, f"explainer_{which}_{model}.json")) as f:
    rows = json.load(f)["rows"]
  methods = list(compare.METHODS)
  labels = [{"feature": r["feature"], **{k: r[f"{k} label"] for k in methods},
             **{f"{k} names": r[f"{k} names"] for k in methods}, **{f"{k} AUC": r[f"{k} AUC"] for k in methods}}
            for r in rows]
  tuned = rules.chosen_labels(which, model)  # the combination under the rule fixed on the tuning half
  if tuned is not None:
    aucs = rules.recorded_aucs(which, model)  # the namer's figure, where the run that chose the label kept it
    for row in labels:
      row[TUNED] = tuned[1][row["feature"]]
      row[f"{TUNED} AUC"] = aucs.get(row["feature"], float("nan"))
    methods.insert(3, TUNED)
  return labels, methods


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--set", default="test", help="paper | concepts | test: a set compare.py has a result file for")
  ap.add_argument("--model", default="qwen2.5-coder-1.5b", help="the comparison's model (names its result file)")
  ap.add_argument("--scorer_model", default="smollm2-135m-instruct", help="the model whose likelihood prompt scores")
  ap.add_argument("--data", default=os.path.join(common.DATA, "benchmark"))
  ap.add_argument("--restart", action="store_true", help="ignore the rows of an earlier run")
  args = ap.parse_args()
  from absl import logging  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.WARNING)
  labels, methods = stored_labels(args.set, args.model)
  features = {f.name: f for f in compare.features_and_names(args.set, args.data)[0]}
  name = f"explainer_{args.set}_{args.model}_scorer_{args.scorer_model}"
  settings = {"set": args.set, "model": args.model, "scorer_model": args.scorer_model}
  earlier = [] if args.restart else common.earlier_run(name, settings)[0]
  rows = [r for r in earlier  # kept where it has every column this run scores (a method added since is scored)
          if r["feature"] in {x["feature"] for x in labels} and all(f"{k} scorer AUC" in r for k in methods)]
  done = {r["feature"] for r in rows}
  scorer_m = load_model(args.scorer_model)
  lcfg = LabelConfig(steps=0)  # compare.py's threshold and seed: the same held-out examples
  t0 = time.time()
  for stored in labels:
    if stored["feature"] in done:
      continue
    t = time.time()
    got = common.scorer_aucs(scorer_m, features[stored["feature"]], lcfg, [stored[k] for k in methods])
    row = dict(stored)
    for k in methods:  # no usable label scores chance, as in compare.py and real_features.py
      row[f"{k} scorer AUC"] = got.get(stored[k], 0.5)
    row["t s"] = round(time.time() - t, 1)
    rows.append(row)
    print(f"{len(rows)}/{len(labels)} {stored['feature']}: "
          + ", ".join(f"{k} {row[f'{k} scorer AUC']:.2f}" for k in methods) + f" ({time.time() - t0:.0f}s)",
          flush=True)
    write(name, settings, rows, methods, len(labels))


def _median(values: list[float]) -> float | None:
  """The median of the known values (None where none is known)."""
  known = [v for v in values if v is not None and np.isfinite(v)]
  return float(np.median(known)) if known else None


def write(name: str, settings: dict, rows: list[dict], methods: list[str], total: int) -> None:
  summary = dict(settings, features=len(rows))
  for k in methods:
    aucs = np.array([r[f"{k} scorer AUC"] for r in rows])
    summary[k] = {"median_scorer_auc": float(np.median(aucs)), "share_scorer_auc_ge_0.8": float(np.mean(aucs >= 0.8)),
                  "median_namer_auc": _median([r.get(f"{k} AUC", np.nan) for r in rows]),
                  "namer_auc_known": int(sum(np.isfinite(r.get(f"{k} AUC", np.nan)) for r in rows))}
  notes = ((f"Partial: {len(rows)} of {total}. " if len(rows) < total else "")
           + f"Median held-out AUC under the likelihood prompt of {settings['scorer_model']} (share >= 0.8): "
           + ", ".join(f"{k} **{summary[k]['median_scorer_auc']:.3f}** ({summary[k]['share_scorer_auc_ge_0.8']:.0%})"
                       for k in methods) + ".")
  cols = ["feature"] + [c for k in methods for c in (k, f"{k} scorer AUC")]
  common.write_table(name, rows, cols, f"The comparison's labels ({settings['set']}, {settings['model']}) under an "
                     f"independent scorer ({settings['scorer_model']} likelihood)", notes, summary=summary)


if __name__ == "__main__":
  main()
