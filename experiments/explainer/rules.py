"""Which choice rule lets the explainer's proposals help: a fixed family of rules, scored on stored candidates.

  python experiments/explainer/rules.py --model qwen2.5-coder-1.5b --set tune [--limit N]   # labels, then scores
  python experiments/explainer/rules.py --model qwen2.5-coder-1.5b --set test --no_label    # compare.py's candidates
  python experiments/explainer/rules.py --model qwen2.5-coder-1.5b --set concepts           # the 26 and the paper's 4

The combination (`label --propose_with=explainer`) scores every candidate exactly and writes them to result.json
("verification": the best 40 by validation loss and every explainer proposal). Each rule below reads only those rows,
so one labeling run serves every rule. The family and the choice were declared before any tuning-half row was read:
the rule with the most categories named on the tuning half wins, ties going to the one listed first (today's rule
first), and only that rule, per pool, is the test half's figure. `--set tune` labels the tuning half's categories
with the explainer's proposals first (resumable; alphabetical, `--limit` the first N); `--set test --no_label` reads
the candidates compare.py stored. `--set concepts` labels the 26 concept features and the paper's four (tuned on in
earlier work: never a test figure) with `label`'s combination as it stands (this rule and its chance condition), so
rescore.py can give them the independent scorer's column; each rule row counts the features where it chose the label
`label` recorded. Runs written before 2026-12-03 (compare.py's test half) kept only the best 40 rows,
so a proposal ranked lower is missing there; a combined-pool margin rule could have chosen it only where the 40th
row's validation loss is within the margin of the best, and the table counts those features ("maybe not exact").
Runs written since keep every proposal: there the count is only an upper bound.

Pools: "ours" (the candidates without the explainer's), "combined" (all). Rules, each `selection.set_namer_choice`
(what `label` runs) with the margin and answers_first of its name, except the lowest loss:
  today        the set namer's choice: the highest set_pos (set namer log-probability) among the compared rows
  lowest loss  the lowest validation loss (the exact scan, proposals included)
  set@m        the highest set_pos among the compared rows within m of the lowest validation loss
  expl@m       (combined) the first explainer answer, in answer order (greedy first), within m; else set@m
Writes experiments/results/explainer_rules_<set>_<model>.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top

MARGINS = (0.05, 0.1, 0.2, 0.3)


def _choose(rows, answers, margin=None, answers_first=False):
  """The set namer rule's choice (`selection.set_namer_choice`, the function `label` runs) on the stored rows it
  compared (those with a set-namer score), in its order: the best 32 single tokens by validation loss, then the
  explainer's proposals."""
  from tokenlabel_jax import selection  # pylint: disable=import-outside-toplevel
  scored = [r for r in rows if "set_pos" in r]
  compared = [scored[i] for i in selection.compared_by_set_namer(
      [len(r["token_ids"]) for r in scored], [r["val_loss"] for r in scored], [r["source"] for r in scored],
      selection.SelectConfig().coverage_top)]
  if not compared:
    return min(rows, key=lambda r: r["val_loss"])
  i = selection.set_namer_choice([r["label"] for r in compared], [r["val_loss"] for r in compared],
                                 [r["set_pos"] for r in compared], answers, margin, answers_first)
  return compared[i]


def rules():
  """(name, pool, margin or None, function of (rows, explainer answers) -> the chosen row), in the declared order."""
  out = []
  for pool in ("ours", "combined"):
    out.append(("today", pool, None, lambda rows, a: _choose(rows, a)))
    out.append(("lowest loss", pool, None, lambda rows, a: min(rows, key=lambda r: r["val_loss"])))
    out += [(f"set@{m}", pool, m, lambda rows, a, m=m: _choose(rows, a, m)) for m in MARGINS]
    if pool == "combined":
      out += [(f"expl@{m}", pool, m, lambda rows, a, m=m: _choose(rows, a, m, True)) for m in MARGINS]
  return out


def exact(rows_all, m) -> bool:
  """Whether a margin rule saw every proposal that could compete: all were stored, or the 40th is outside."""
  from tokenlabel_jax.selection import STORED_TOP  # pylint: disable=import-outside-toplevel
  loss = sorted(r["val_loss"] for r in rows_all)
  return len(rows_all) < STORED_TOP or loss[STORED_TOP - 1] > loss[0] + m


def score(run_dir: str, cats: list[dict]) -> tuple[list[dict], dict]:
  from tokenlabel_jax import naming  # pylint: disable=import-outside-toplevel
  per_feature, table = {}, []
  results = {}
  for c in cats:
    path = os.path.join(run_dir, c["name"], "result.json")
    if os.path.exists(path):
      with open(path, encoding="utf-8") as f:
        results[c["name"]] = json.load(f)
  names = {c["name"]: c["names"] for c in cats}
  for name, pool, m, rule in rules():
    named, inexact, recorded = 0, 0, 0
    for f, res in results.items():
      rows = res["verification"]
      rows = rows if pool == "combined" else [r for r in rows if r["source"] != "explainer"]
      answers = res.get("explainer", {}).get("proposals", [])
      chosen = rule(rows, answers)["label"]
      named += naming.names_category(chosen, names[f])
      inexact += not exact(res["verification"], m) if m is not None and pool == "combined" else 0
      recorded += chosen == res["best_candidate"]
      per_feature.setdefault(f, {})[f"{pool} {name}"] = chosen
    table.append({"rule": name, "pool": pool, "names": named, "of": len(results), "share": named / max(1, len(results)),
                  "maybe not exact": inexact, "equals the recorded label": recorded})
  for f, res in results.items():  # what `label` itself recorded, with its held-out AUC (namer) and seconds
    per_feature[f].update(recorded=res["best_candidate"], **{"recorded AUC": res.get("heldout", {}).get("auc"),
                                                             "recorded s": res.get("wall_time_s")})
  return table, per_feature


def choice(table: list[dict]) -> dict[str, str]:
  """Per pool, the declared-first rule with the most categories named."""
  out = {}
  for pool in ("ours", "combined"):
    rows = [r for r in table if r["pool"] == pool]
    out[pool] = max(rows, key=lambda r: (r["names"], -rows.index(r)))["rule"]
  return out


def _summary(which: str, model: str) -> dict | None:
  """The summary of this script's result file for a set (the paper's four are in the concepts set's); None where
  it has not been run."""
  path = os.path.join(common.RESULTS, f"explainer_rules_{'concepts' if which == 'paper' else which}_{model}.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)["summary"]


def chosen_labels(which: str, model: str) -> tuple[str, dict[str, str]] | None:
  """The combination's labels under the rule fixed on the tuning half, per feature, and that rule's key, from this
  script's result file for `which` (the paper's four are in the concepts file); None where it has not been run."""
  summary = _summary(which, model)
  if summary is None:
    return None
  key = "combined " + summary["chosen"]["combined"]
  return key, {name: labels[key] for name, labels in summary["labels"].items()}


def recorded_aucs(which: str, model: str) -> dict[str, float]:
  """Per feature, the held-out AUC (namer) of the rule's label where it is the label `label` recorded (the run's
  own figure for it); features where they differ, or runs from before the figure was kept, are left out."""
  summary = _summary(which, model)
  if summary is None:
    return {}
  key = "combined " + summary["chosen"]["combined"]
  return {name: got["recorded AUC"] for name, got in summary["labels"].items()
          if got.get("recorded") == got[key] and got.get("recorded AUC") is not None}


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--model", default="qwen2.5-coder-1.5b")
  ap.add_argument("--set", default="tune", help="tune | test | concepts (the 26 and the paper's four)")
  ap.add_argument("--limit", type=int, default=0, help="the first N categories (alphabetical)")
  ap.add_argument("--no_label", action="store_true", help="only read the candidates already stored")
  ap.add_argument("--out", default=os.path.join(common.HERE, "runs", "explainer_compare"))
  args = ap.parse_args()
  cats = common.categories(args.set)[:args.limit or None]
  run_dir = os.path.join(args.out, f"{args.set}_{args.model}", "combined")  # where compare.py keeps them
  if not args.no_label:
    label(args.model, cats, run_dir)
  table, per_feature = score(run_dir, cats)
  chosen = (choice(table) if args.set == "tune" else  # the tuning half's choice, read back from its result file
            common.earlier_run(f"explainer_rules_tune_{args.model}", {"set": "tune", "model": args.model})[1].get(
                "chosen"))
  for r in table:
    r["fixed"] = "yes" if chosen and chosen.get(r["pool"]) == r["rule"] else ""
  how = ("chosen here (most named; ties to the rule listed first)" if args.set == "tune" else
         "fixed on the tuning half before this was read" if chosen else "no tuning-half choice found")
  part = "half" if args.set in ("tune", "test") else "set"
  notes = (f"{table[0]['of']} of {len(cats)} features of the {args.set} {part}. The rule marked fixed, per pool: "
           f"{how}. A combined-pool margin rule may have missed an explainer proposal on the features counted under "
           "'maybe not exact' (see the script's docstring).")
  common.write_table(f"explainer_rules_{args.set}_{args.model}", table,
                     ["rule", "pool", "names", "of", "share", "maybe not exact", "equals the recorded label", "fixed"],
                     f"Choice rules on stored candidates ({args.set} {part}, {args.model})", notes,
                     summary={"set": args.set, "model": args.model, "chosen": chosen, "labels": per_feature})


def label(model: str, cats: list[dict], run_dir: str) -> None:
  """Labels the categories with the explainer's proposals in the pool, four at a time as compare.py does
  (a feature whose result.json exists is kept)."""
  from tokenlabel_jax import data as data_lib, discriminators as disc_lib  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import labeling, selection  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=import-outside-toplevel
  m = load_model(model)
  disc = disc_lib.get(disc_lib.default_for(m.tokenizer, m.cfg))
  lcfg = LabelConfig(steps=labeling.default_steps(disc, LabelConfig(), None))
  scfg = selection.for_model(selection.SelectConfig(propose_with="explainer", proposals=4), m.cfg)
  todo = [c for c in cats if not os.path.exists(os.path.join(run_dir, c["name"], "result.json"))]
  for start in range(0, len(todo), 4):
    group = [data_lib.load_features(c["path"])[0] for c in todo[start:start + 4]]
    labeling.label_features(m, group, disc, lcfg, run_dir, (), True, None, scfg, plots=False)
    print(f"{len(cats) - len(todo) + start + len(group)}/{len(cats)} labeled", flush=True)


if __name__ == "__main__":
  main()
