"""The norms set: everyday categories no one had labeled, judged in finished `label` runs (plan_norms.md).

  python scripts/make_benchmark.py --norms          # experiments/data/norms, categories_norms.json (2 min)
  python -m tokenlabel_jax.label --features=experiments/data/norms --output_dir=runs/norms_135m
  python -m tokenlabel_jax.label --features=experiments/data/norms --model=qwen2.5-coder-1.5b \
      --output_dir=runs/norms_1.5b
  python experiments/naming/naming_norms.py --run 135m=runs/norms_135m --run 1.5b=runs/norms_1.5b ...
  python experiments/naming/naming_norms.py --set norms2 --run ...   # the second norms set (plan_norms2.md)
  python experiments/naming/naming_norms.py --set norms --data experiments/data/norms_siblings --tag _siblings \
      --levels --run ...   # the same categories with their siblings as near misses (plan_siblings.md)

Each run's labels are judged as the benchmark judges them (`naming.names_category` against the names in
categories_norms.json). Beside them, on the same examples: the first run's exact scan (its best single token by
validation loss, from result.json "verification") and the top token (the most frequent word at the peaks of the
strongest training records). Writes experiments/results/naming_<set><tag>.{md,json}. `--data`: the records the
runs labeled, where they are not the set's own (the top token is read from them). `--levels`: each label is also
checked against the names of the category's WordNet ancestors (one level up or more: ' bird' for ducks).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import baselines, data as data_lib, naming  # pylint: disable=g-import-not-at-top


def scan_of(result: dict) -> dict:
  """The exact scan's answer: the single-token candidate with the lowest validation loss."""
  return min((v for v in result["verification"] if len(v["token_ids"]) == 1), key=lambda v: v["val_loss"])


def ancestor_names(cats) -> dict[str, list[str]]:
  """Per category, the names of every synset above it in WordNet (its hypernyms, theirs and so on)."""
  from tokenlabel_jax import synthetic  # pylint: disable=import-outside-toplevel
  wn = synthetic.WordNet()
  out = {}
  for c in cats:
    lemma, sense = c["synset"].split(".n.")
    offset = wn.sense(lemma, int(sense))
    out[c["name"]] = sorted({w.replace("_", " ").lower() for o in wn.hypernym_closure(offset) - {offset}
                             for w in wn.lemmas(o)})
  return out


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--run", action="append", required=True, help="tag=directory of a finished label run")
  parser.add_argument("--set", default="norms", choices=["norms", "norms2"], help="which hand-declared set")
  parser.add_argument("--data", default=None, help="the records the runs labeled (default: the set's own)")
  parser.add_argument("--tag", default="", help="appended to the result files' name")
  parser.add_argument("--levels", action="store_true", help="also count labels that name an ancestor (WordNet)")
  args = parser.parse_args(argv)
  runs = dict(r.split("=", 1) for r in args.run)
  cats = common.categories(args.set, args.data)
  ancestors = ancestor_names(cats) if args.levels else {}
  rows, named = [], {t: [] for t in runs}
  for c in cats:
    row = {"category": c["name"], "norm": c["norm"]}
    for tag, path in runs.items():
      with open(os.path.join(path, c["name"], "result.json"), encoding="utf-8") as f:
        r = json.load(f)
      ok = naming.names_category(r["label"], c["names"])
      named[tag].append(ok)
      row |= {f"{tag} label": r["label"], f"{tag} names": ok, f"{tag} AUC": r["heldout"]["auc"],
              f"{tag} s": r.get("wall_time_s", float("nan"))}
      if args.levels:
        row[f"{tag} up"] = not ok and naming.names_category(r["label"], ancestors[c["name"]])
      if tag == next(iter(runs)):
        scan = scan_of(r)
        row |= {"scan label": scan["label"], "scan names": naming.names_category(scan["label"], c["names"])}
    top = baselines.top_token(data_lib.load_features(c["path"])[0], threshold=0.0)
    row |= {"top token": top, "top token names": naming.names_category(top, c["names"])}
    rows.append(row)
  first = next(iter(runs))
  summary = {"categories": len(cats), "runs": runs,
             "named": {t: int(sum(v)) for t, v in named.items()},
             "scan_named": int(sum(r["scan names"] for r in rows)),
             "top_token_named": int(sum(r["top token names"] for r in rows)),
             "median_heldout_auc": {t: float(np.median([r[f"{t} AUC"] for r in rows])) for t in runs},
             "withheld": {t: sum(r[f"{t} label"] is None for r in rows) for t in runs},
             "wall_s": {t: float(np.nansum([r[f"{t} s"] for r in rows])) for t in runs},
             **({"names_an_ancestor": {t: sum(r[f"{t} up"] for r in rows) for t in runs}} if args.levels else {}),
             "against_first": {}}  # each later run against the first; "scan": the first run against its exact scan
  scan = [r["scan names"] for r in rows]
  for t, (base, other) in [(t, (named[first], named[t])) for t in list(runs)[1:]] + [("scan", (scan, named[first]))]:
    gained = sum(b and not a for a, b in zip(base, other))
    lost = sum(a and not b for a, b in zip(base, other))
    summary["against_first"][t] = {"gained": gained, "lost": lost, "p": common.sign_test(gained, lost)}
  counts = "; ".join(f"{t} **{summary['named'][t]}**" for t in runs)
  paired = "; ".join((f"{first} against its exact scan" if t == "scan" else f"{t} against {first}")
                     + f": +{v['gained']} / -{v['lost']} (sign test p = {v['p']:.2g})"
                     for t, v in summary["against_first"].items())
  notes = (f"{len(cats)} categories declared in experiments/naming/{args.set}.json before any was labeled "
           f"(plan_{args.set}.md). Names the category: {counts}; exact scan ({first}) {summary['scan_named']}; "
           f"top token {summary['top_token_named']}. {paired}. Median held-out AUC (each run's own discriminator): "
           + ", ".join(f"{t} {v:.3f}" for t, v in summary["median_heldout_auc"].items()) + ".")
  if args.levels:
    notes += (" Names an ancestor instead (a WordNet hypernym's name, one level up or more): "
              + ", ".join(f"{t} {v}" for t, v in summary["names_an_ancestor"].items()) + ".")
  kinds = ("label", "names", "AUC") + (("up",) if args.levels else ())
  columns = ["category"] + [f"{t} {k}" for t in runs for k in kinds] + [
      "scan label", "scan names", "top token", "top token names"]
  title = {"norms": "The norms set", "norms2": "The second norms set"}[args.set]
  if args.data:
    title += f" ({os.path.basename(os.path.normpath(args.data))})"
  common.write_table(f"naming_{args.set}{args.tag}", rows, columns, f"{title}: does the label name the category?",
                     notes, summary=summary)
  return 0


if __name__ == "__main__":
  sys.exit(main())
