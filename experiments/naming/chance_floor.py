"""What the chance floor of the held-out bound does to the labels of stored naming runs (no model is run).

  python experiments/naming/chance_floor.py      # after scripts/make_benchmark.py and --fresh (the records)

A label is withheld when the one-sided 95% lower bound of its held-out AUC is at most 0.5. Hanley & McNeil's
standard error, which the bound used, shrinks to 0 as the AUC nears 1 and is too small when a feature's held-out
positives are few distinct tokens; since 2026-12-06 it is never taken below the spread an AUC has by chance alone at
those counts (`selection.auc_lower_bound`). This script redraws each stored run's held-out split (the draw depends on
the records only; `distinct_bound.py`), recomputes the bound without and with the floor from the stored held-out AUC,
each counting a held-out token once as the README's counts do, and counts the labels the floor withholds and the
names lost with them, for every run behind the README's naming figures. Writes
experiments/results/naming_chance_floor.{md,json}.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from experiments.naming import distinct_bound  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import selection  # pylint: disable=g-import-not-at-top
from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=g-import-not-at-top

# (set, stored result, the label's column prefix): the runs the README's naming figures come from.
RUNS = ([("test", "naming_test_scan", ""), ("test", "naming_chooser_test_qwen2.5-coder-1.5b", ""),
         ("test", "naming_test_qwen2.5-coder-0.5b_coverage", ""), ("fresh", "naming_fresh_scan", ""),
         ("fresh", "naming_chooser_fresh_qwen2.5-coder-1.5b", ""), ("fresh", "naming_fresh_qwen2.5-coder-0.5b", "")]
        + [(s, f"naming_{s}", f"{m} ") for s in ("norms", "norms2") for m in ("135m", "1.5b", "0.5b")])


def stored_rows(result: str) -> dict[str, dict]:
  """Per category: the stored row, or for a chooser result the ask rule's label rebuilt from its candidates."""
  if "chooser" in result:
    return distinct_bound.ask_rows(result)
  with open(os.path.join(common.RESULTS, result + ".json"), encoding="utf-8") as f:
    return {r["category"]: r for r in json.load(f)["rows"]}


def main() -> int:
  lcfg, bar = LabelConfig(), selection.SelectConfig().min_auc_lower
  rows, counts = [], {}
  for set_name, result, col in RUNS:
    stored, cats = stored_rows(result), {c["name"]: c for c in common.categories(set_name)}
    given = kept = named = named_after = 0
    for name, r in stored.items():
      auc = r[f"{col}heldout AUC"] if f"{col}heldout AUC" in r else r[f"{col}AUC"]
      _, distinct = distinct_bound.heldout_counts(cats[name]["path"], lcfg)
      old, new = distinct_bound.bound(auc, *distinct), selection.auc_lower_bound(auc, *distinct)
      label = r[f"{col}label"] if old > bar else None  # the README's counts: each held-out token once, no floor
      names = bool(r[f"{col}names"]) and label is not None
      given, kept = given + (label is not None), kept + (label is not None and new > bar)
      named, named_after = named + names, named_after + (names and new > bar)
      if label is not None and new <= bar:
        rows.append({"set": set_name, "run": result + (f" ({col.strip()})" if col else ""), "category": name,
                     "label": label, "names": names, "heldout AUC": auc,
                     "distinct positives / negatives": f"{distinct[0]} / {distinct[1]}",
                     "lower95 without the floor": old, "lower95 with it": new})
    counts[result + (f" ({col.strip()})" if col else "")] = {
        "set": set_name, "categories": len(stored), "labels given": given, "still given": kept, "named": named,
        "named now": named_after}
  notes = ("Per run: labels given and categories named, without the floor -> with it. "
           + "; ".join(f"{k}: {v['labels given']} -> {v['still given']} labels, named {v['named']} -> "
                       f"{v['named now']}" for k, v in counts.items()) + ".")
  common.write_table("naming_chance_floor", rows, ["set", "run", "category", "label", "names", "heldout AUC",
                                                   "distinct positives / negatives", "lower95 without the floor",
                                                   "lower95 with it"],
                     "The chance floor of the held-out bound: the labels it withholds in stored runs", notes,
                     summary=counts)
  return 0


if __name__ == "__main__":
  sys.exit(main())
