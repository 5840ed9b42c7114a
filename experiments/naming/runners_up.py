"""How often the category's name is among a label's runners-up (`runners_up` in result.json, since 2026-12-07).

  python experiments/naming/naming_benchmark.py --split test --model smollm2-135m-instruct --scorer '' \
      --tag _smollm2-135m-instruct_runners                                      # 5 minutes on 2 cores
  python experiments/naming/naming_benchmark.py --split test --model qwen2.5-coder-1.5b --scorer '' \
      --tag _qwen2.5-coder-1.5b_shipped                                          # 38 minutes
  python experiments/naming/runners_up.py --split test --runs experiments/runs/naming/test_smollm2-135m-instruct_runners \
      experiments/runs/naming/test_qwen2.5-coder-1.5b_shipped
  python experiments/models/speed.py --model qwen2.5-coder-1.5b --runs 1       # the 26 concepts, 6 minutes
  python experiments/naming/runners_up.py --split concepts --runs experiments/runs/models_speed/qwen2.5-coder-1.5b_1

Not a rule: the label is what it was. A person reads the label with the 4 candidates its choice rule ranks next; this
counts the categories where the best candidate or one of them names the category (the benchmark's judge), beside the
label's own count (with the run's chance check). For each run directory of `naming_benchmark.py` (one result.json per
category), and, for the 1.5B model's ask rule, on the chooser's stored rows of the tuning half, the test half and the
fresh set (`selection.runners_up` applied to their candidates in the ask rule's window: no model run). Writes
experiments/results/naming_runners_up_<split>.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from experiments.naming import chooser  # pylint: disable=g-import-not-at-top


def cumulative(lists: list[list[str]], names: list[list[str]]) -> list[int]:
  """Categories whose first k words hold a name, for k = 1 .. the longest list."""
  from tokenlabel_jax import naming  # pylint: disable=import-outside-toplevel
  first = [next((k for k, w in enumerate(ws) if naming.names_category(w, ns)), None) for ws, ns in zip(lists, names)]
  return [sum(f is not None and f < k for f in first) for k in range(1, 1 + max(map(len, lists), default=1))]


def run_row(run_dir: str, cats: dict[str, dict]) -> dict:
  """One labeling run: the label's count and the best candidate's with 0 to 4 runners-up."""
  from tokenlabel_jax import naming  # pylint: disable=import-outside-toplevel
  results = []
  for name in sorted(os.listdir(run_dir)):
    path = os.path.join(run_dir, name, "result.json")
    if name in cats and os.path.isfile(path):
      with open(path, encoding="utf-8") as f:
        results.append(json.load(f))
  if not results or any("runners_up" not in r for r in results):
    sys.exit(f"{run_dir}: no result.json with runners_up (a run of naming_benchmark.py since 2026-12-07)")
  names = [cats[r["feature"]]["names"] for r in results]
  counts = cumulative([[r["best_candidate"]] + [t for t, _ in r["runners_up"]] for r in results], names)
  return {"source": os.path.relpath(run_dir, common.HERE), "model": results[0]["model"],
          "rule": results[0]["selection"]["rule"] or "model default", "categories": len(results),
          "label (chance check)": sum(naming.names_category(r["label"], n) for r, n in zip(results, names)),
          **{f"best {k + 1}": c for k, c in enumerate(counts)}}


def chooser_row(split: str, model: str = "qwen2.5-coder-1.5b") -> dict | None:
  """The ask rule's label and runners-up on the chooser's stored rows (candidates within its window, their end-scored
  answers), as `selection.runners_up` orders them; no chance check, as the chooser counts."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import selection  # pylint: disable=import-outside-toplevel
  path = os.path.join(common.RESULTS, f"naming_chooser_{split}_{model}.json")
  if not os.path.isfile(path):
    return None
  with open(path, encoding="utf-8") as f:
    rows = json.load(f)["summary"]["rows"]
  scfg = dataclasses.replace(selection.SelectConfig(), rule="ask")
  lists = []
  for r in rows:
    window = [selection.Candidate((0,), c["label"], "scan", {"val_loss": c["val_loss"], "ask": c["ask_end"]})
              for c in r["candidates"] if chooser.in_window(r["candidates"], c) and c.get("ask_end") is not None]
    label = chooser.end_rule(r["candidates"])["label"]
    chosen = next(c for c in window if c.text == label) if any(c.text == label for c in window) else None
    lists.append([label] + ([c.text for c in selection.runners_up(window, chosen, scfg)] if chosen else []))
  counts = cumulative(lists, [r["names"] for r in rows])
  return {"source": os.path.relpath(path, common.HERE), "model": model, "rule": "ask (stored rows)",
          "categories": len(rows), **{f"best {k + 1}": c for k, c in enumerate(counts)}}


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--split", default="test", help="the split the --runs labeled: tune | test | fresh")
  ap.add_argument("--runs", nargs="*", default=[], help="naming_benchmark.py run directories of that split")
  args = ap.parse_args()
  cats = {c["name"]: c for c in common.categories(args.split)}
  rows = [run_row(d, cats) for d in args.runs]
  rows += [r for r in (chooser_row(s) for s in ("tune", "test", "fresh")) if r]
  cols = ["source", "model", "rule", "categories", "label (chance check)"] + [f"best {k}" for k in range(1, 6)]
  common.write_table(f"naming_runners_up_{args.split}", rows, cols, "The category's name among a label's runners-up",
                     "`best k`: the best candidate (the label before the chance check) or one of its first k - 1 "
                     "runners-up names the category, by the benchmark's judge. Runs: the " + args.split + " split.",
                     summary={"split": args.split, "rows": rows})


if __name__ == "__main__":
  main()
