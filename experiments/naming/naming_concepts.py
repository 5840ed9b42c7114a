"""The 26 concept features of experiments/data/concepts and the paper's four, labeled with default settings and judged
as the naming benchmark judges (tokenlabel_jax.naming): does the label name the category?

  python experiments/naming/naming_concepts.py

The names that count come from experiments/concepts.json (concept word and synonyms, written when those features were
made) and, for the paper's features, from the list below. These 30 features were used for tuning in earlier work:
figures here are not test figures (experiments/results/naming_test.md is).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import data as data_lib, discriminators as disc_lib, labeling, naming
from tokenlabel_jax.optimization import LabelConfig

def main():
  args, m, disc = common.setup("naming_concepts", __doc__, launcher_steps=True, **{
      "--scorer": dict(default="likelihood"),
      "--from_run": dict(default="", help="judge the result.json files of a finished `label` run instead "
                                          "(e.g. the README's command on experiments/data/concepts)")})
  spec = json.load(open(os.path.join(common.HERE, "concepts.json")))["concepts"]
  names = {c["name"]: [c["concept_word"], c["name"].replace("_", " "), *c["synonyms"]] for c in spec}
  names.update(common.PAPER)
  features = [data_lib.load_features(os.path.join(common.DATA, "concepts", c["name"] + ".jsonl"))[0] for c in spec]
  features += [common.feature(f) for f in common.PAPER]
  scorer = disc_lib.get(args.scorer) if args.scorer else None
  lcfg = LabelConfig(steps=args.steps)
  if args.from_run:
    return judge_run(args.from_run, spec, names)
  rows = []
  for start in range(0, len(features), 4):
    group = features[start:start + 4]
    for r in labeling.label_features(m, group, disc, lcfg, args.out, (), True, None, scorer=scorer):
      scan = min((v for v in r["verification"] if len(v["token_ids"]) == 1), key=lambda v: v["val_loss"])
      rows.append({"feature": r["feature"], "set": "paper" if r["feature"] in common.PAPER else "concepts",
                   "label": r["label"], "names": naming.names_category(r["label"], names[r["feature"]]),
                   "heldout AUC": r["heldout"]["auc"],
                   "scorer AUC": r.get("scorer", {}).get("label", {}).get("auc", float("nan")),
                   "scan label": scan["label"], "scan names": naming.names_category(scan["label"],
                                                                                   names[r["feature"]]),
                   "scan AUC": scan["auc"], "source": r["source"]})
  concepts = [r for r in rows if r["set"] == "concepts"]
  summary = {"concepts_named": sum(r["names"] for r in concepts), "concepts": len(concepts),
             "concepts_scan_named": sum(r["scan names"] for r in concepts),
             "median_heldout_auc": float(np.median([r["heldout AUC"] for r in concepts]))}
  common.write_table("naming_concepts", rows, ["feature", "set", "label", "names", "heldout AUC", "scorer AUC",
                                               "scan label", "scan names", "scan AUC", "source"],
                     "The 26 concept features and the paper's four: does the label name the category?",
                     f"Concepts: **{summary['concepts_named']} of {summary['concepts']}** labels name the category "
                     f"(exact scan: {summary['concepts_scan_named']}); median held-out AUC "
                     f"{summary['median_heldout_auc']:.3f}. These features were tuned on in earlier work.",
                     summary=summary)


def judge_run(run: str, spec, names) -> None:
  """Judges a finished labeling run's concept labels (no labeling here): prints the count and one line each."""
  named, rows = 0, []
  for c in spec:
    with open(os.path.join(run, c["name"], "result.json")) as f:
      r = json.load(f)
    ok = naming.names_category(r["label"], names[c["name"]])
    named += ok
    rows.append(f"{c['name']:20s} {r['label']!r:18s} {'names' if ok else '-':6s} "
                f"held-out AUC {r['heldout']['auc']:.3f}")
  print("\n".join(rows))
  print(f"{named} of {len(spec)} labels name the category ({run})")


if __name__ == "__main__":
  main()
