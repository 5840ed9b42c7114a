"""What the chance floor of the held-out bound does to the labels of stored naming runs (no model is run).

  python experiments/naming/chance_floor.py      # after scripts/make_benchmark.py and --fresh (the records)
  python experiments/naming/chance_floor.py --sae runs/sae   # also the README's 200-latent runs (their records:
                                                             # python -m tokenlabel_jax.sae, trained again here)

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
# The runs behind the README's 200-latent column, per model: their stored result files (the 1.5B model's in parts).
LATENT_RUNS = {"135m": ["real_features_smollm2-135m-instruct"], "0.5b": ["real_features_qwen2.5-coder-0.5b"],
               "1.5b": [f"real_features_qwen2.5-coder-1.5b_ask_{p}" for p in ("first32", "next32", "65to96",
                                                                             "97to200")]}


def stored_rows(result: str) -> dict[str, dict]:
  """Per category: the stored row, or for a chooser result the ask rule's label rebuilt from its candidates."""
  if "chooser" in result:
    return distinct_bound.ask_rows(result)
  with open(os.path.join(common.RESULTS, result + ".json"), encoding="utf-8") as f:
    return {r["category"]: r for r in json.load(f)["rows"]}


def latent_rows(sae: str, lcfg: LabelConfig, bar: float) -> tuple[list[dict], dict[str, dict]]:
  """The same count on the 200-latent runs. Their figures are medians of the best candidate's held-out AUC, given
  or withheld, so the floor can change only how many labels are withheld. The records come from an SAE trained
  again, so each stored bound is checked against the redrawn split (the old bound on the drawn or the distinct
  counts, whichever that run used)."""
  rows, counts = [], {}
  for model, results in LATENT_RUNS.items():
    given = kept = stored_given = reproduced = n = 0
    for result in results:
      with open(os.path.join(common.RESULTS, result + ".json"), encoding="utf-8") as f:
        stored = json.load(f)["latents"]
      for r in stored:
        drawn, distinct = distinct_bound.heldout_counts(os.path.join(sae, "latents", r["id"] + ".jsonl"), lcfg)
        old = distinct_bound.bound(r["heldout_auc"], *distinct)
        new = selection.auc_lower_bound(r["heldout_auc"], *distinct)
        n, stored_given = n + 1, stored_given + (r["label"] is not None)
        reproduced += min(abs(x - r["heldout_auc_lower95"])
                          for x in (distinct_bound.bound(r["heldout_auc"], *drawn), old)) < 1e-6
        given, kept = given + (old > bar), kept + (old > bar and new > bar)
        if old > bar >= new:
          rows.append({"set": "200 latents", "run": result, "category": r["id"], "label": r["best_candidate"],
                       "names": "-", "heldout AUC": r["heldout_auc"],
                       "distinct positives / negatives": f"{distinct[0]} / {distinct[1]}",
                       "lower95 without the floor": old, "lower95 with it": new})
    counts[f"200 latents ({model})"] = {"latents": n, "labels given as stored": stored_given,
                                       "labels given (each token once, no floor)": given, "still given": kept,
                                       "stored bounds reproduced on the redrawn splits": reproduced}
  return rows, counts


def main() -> int:
  import argparse  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sae", default="", help="a tokenlabel_jax.sae run (its latents/ records)")
  args = parser.parse_args()
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
  if args.sae:
    real_rows, real = latent_rows(args.sae, lcfg, bar)
    rows += real_rows
    notes += " The 200 latents (medians unchanged: withheld labels keep their AUC): " + "; ".join(
        f"{k}: {v['labels given (each token once, no floor)']} -> {v['still given']} labels of {v['latents']} "
        f"({v['labels given as stored']} as stored; stored bounds reproduced on the redrawn splits: "
        f"{v['stored bounds reproduced on the redrawn splits']})" for k, v in real.items()) + "."
    counts |= real
  common.write_table("naming_chance_floor", rows, ["set", "run", "category", "label", "names", "heldout AUC",
                                                   "distinct positives / negatives", "lower95 without the floor",
                                                   "lower95 with it"],
                     "The chance floor of the held-out bound: the labels it withholds in stored runs", notes,
                     summary=counts)
  return 0


if __name__ == "__main__":
  sys.exit(main())
