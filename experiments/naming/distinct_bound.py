"""What counting each held-out token once does to the labels of stored naming runs (no model is run).

  python experiments/naming/distinct_bound.py      # after scripts/make_benchmark.py and --fresh (the records)
  python experiments/naming/distinct_bound.py --sae runs/sae   # also real_features.json's 200 latents and 50
                                                               # neurons (their records: tokenlabel_jax.sae)

A label is withheld when the one-sided 95% lower bound of its held-out AUC is at most 0.5. A feature with fewer
positive tokens than the held-out split asks for (64 of 128) is drawn with repeats, and the bound was computed as if
every draw were new evidence; from 2026-12-06 it counted each token once (`Split.distinct_counts` then; since
2026-12-07 `Split.effective_counts`: word_bound.py). This script redraws each stored run's held-out split (the same
seed and sizes: the draw depends on the records only), recomputes the bound both ways from the stored held-out AUC,
checks that the old way reproduces the run's own decisions, and counts the labels that the new way withholds and the
names lost with them. The 1.5B model's ask rule was scored without the chance check (chooser.py); both bounds are
applied to it here, so its counts are comparable.
Writes experiments/results/naming_distinct_bound.{md,json}.
"""

from __future__ import annotations

import functools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import data as data_lib, labeling, selection  # pylint: disable=g-import-not-at-top
from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=g-import-not-at-top

# (set, stored result, the label's column prefix, the categories' split): runs whose result files keep every label.
RUNS = [(s, f"naming_{s}_{tag}", "", s) for s in ("test", "fresh") for tag in (
    "scan", "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b_coverage" if s == "test" else "qwen2.5-coder-0.5b")]
# The norms set's declared first runs, made with the old bound (naming_norms.md holds the runs made again with the
# new one, which must not be checked against the old).
RUNS += [("norms", "naming_norms_first", f"{t} ", "norms") for t in ("135m", "1.5b", "0.5b")]
# The 1.5B model's ask rule was scored by chooser.py on stored candidates, without the chance check: its label and
# held-out AUC are rebuilt here from each row's candidates (the rule `label` runs).
CHOOSER = [("test", "naming_chooser_test_qwen2.5-coder-1.5b", "test"),
           ("fresh", "naming_chooser_fresh_qwen2.5-coder-1.5b", "fresh")]


def ask_rows(result: str) -> dict[str, dict]:
  """Per category of a chooser result: the ask rule's label, whether it names the category, its held-out AUC."""
  from experiments.naming import chooser  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import naming  # pylint: disable=import-outside-toplevel
  with open(os.path.join(common.RESULTS, result + ".json"), encoding="utf-8") as f:
    rows = json.load(f)["summary"]["rows"]
  out = {}
  for r in rows:
    c = chooser.end_rule(r["candidates"])
    out[r["category"]] = {"label": c["label"], "names": naming.names_category(c["label"], r["names"]),
                          "heldout AUC": c["heldout_auc"]}
  return out


def bound(auc: float, n_pos: int, n_neg: int) -> float:
  """The chance check's bound as this study compared it: without the floor added later the same day."""
  return selection.auc_lower_bound(auc, n_pos, n_neg, chance_floor=False)


@functools.lru_cache(maxsize=None)  # several runs share a category's records
def heldout_counts(path: str, lcfg: LabelConfig) -> tuple[tuple[int, int], tuple[int, int]]:
  """((positives, negatives) as drawn, the same counting each token once) of a feature's held-out split."""
  examples = labeling.sample_split(data_lib.load_features(path)[0], lcfg, "heldout")
  n_pos = sum(e.positive for e in examples)
  distinct = [len({(e.record, e.index) for e in examples if e.positive == want}) for want in (True, False)]
  return (n_pos, len(examples) - n_pos), (distinct[0], distinct[1])


def real_feature_counts(sae: str, lcfg: LabelConfig, bar: float) -> dict[str, dict]:
  """Per kind (latents, neurons) of real_features.json: labels given with the stored bound and counting tokens once,
  and how many held-out splits repeat positive tokens. The stored bound is checked against the redrawn split."""
  with open(os.path.join(common.RESULTS, "real_features.json"), encoding="utf-8") as f:
    stored = json.load(f)
  out = {}
  for kind in ("latents", "neurons"):
    given = kept = repeats = mismatch = 0
    for r in stored[kind]:
      drawn, distinct = heldout_counts(os.path.join(sae, kind, r["id"] + ".jsonl"), lcfg)
      mismatch += abs(bound(r["heldout_auc"], *drawn) - r["heldout_auc_lower95"]) > 1e-6
      repeats += distinct[0] < drawn[0]
      given += r["label"] is not None
      kept += r["label"] is not None and bound(r["heldout_auc"], *distinct) > bar
    out[f"real_features ({kind})"] = {"features": len(stored[kind]), "labels given": given, "still given": kept,
                                      "held-out splits with repeats": repeats,
                                      "stored bounds not reproduced": mismatch}
  return out


def main() -> int:
  import argparse  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sae", default="", help="a tokenlabel_jax.sae run (its latents/ and neurons/ records)")
  args = parser.parse_args()
  lcfg, bar = LabelConfig(), selection.SelectConfig().min_auc_lower
  rows, counts = [], {}
  for set_name, result, col, split in RUNS + [(s, r, "", sp) for s, r, sp in CHOOSER]:
    if "chooser" in result:
      stored, result = ask_rows(result), result + ", ask rule (no chance check then)"
    else:
      with open(os.path.join(common.RESULTS, result + ".json"), encoding="utf-8") as f:
        stored = {r["category"]: r for r in json.load(f)["rows"]}
    cats = {c["name"]: c for c in common.categories(split)}
    given = kept = named = named_after = mismatch = 0
    for name, r in stored.items():
      auc = r[f"{col}heldout AUC"] if f"{col}heldout AUC" in r else r[f"{col}AUC"]
      drawn, distinct = heldout_counts(cats[name]["path"], lcfg)
      old, new = bound(auc, *drawn), bound(auc, *distinct)
      label = r[f"{col}label"]
      if "chooser" in result:  # no decision was stored: the old bound's is taken as the run's
        label = label if old > bar else None
      mismatch += (label is not None) != (old > bar)
      given += label is not None
      kept += label is not None and new > bar
      named += bool(r[f"{col}names"]) and label is not None
      named_after += bool(r[f"{col}names"]) and label is not None and new > bar
      if label is not None and new <= bar:
        rows.append({"set": set_name, "run": result + (f" ({col.strip()})" if col else ""), "category": name,
                     "label": label, "names": bool(r[f"{col}names"]), "heldout AUC": auc,
                     "positives drawn / distinct": f"{drawn[0]} / {distinct[0]}", "lower95 before": old,
                     "lower95 now": new})
    counts[result + (f" ({col.strip()})" if col else "")] = {
        "set": set_name, "categories": len(stored), "labels given": given, "still given": kept, "named": named,
        "named now": named_after, "decisions the old bound does not reproduce": mismatch}
  notes = ("Per run: labels given and categories named, with the old bound -> counting each token once. "
           + "; ".join(f"{k}: {v['labels given']} -> {v['still given']} labels, named {v['named']} -> "
                       f"{v['named now']}" for k, v in counts.items())
           + ". The old bound reproduces every stored run's decisions: "
           + str(all(v["decisions the old bound does not reproduce"] == 0 for v in counts.values())) + ".")
  if args.sae:
    real = real_feature_counts(args.sae, lcfg, bar)
    notes += " Real features: " + "; ".join(
        f"{k}: {v['labels given']} -> {v['still given']} labels of {v['features']}, "
        f"{v['held-out splits with repeats']} held-out splits with repeats, stored bounds reproduced: "
        f"{v['stored bounds not reproduced'] == 0}" for k, v in real.items()) + "."
    counts |= real
  common.write_table("naming_distinct_bound", rows, ["set", "run", "category", "label", "names", "heldout AUC",
                                                     "positives drawn / distinct", "lower95 before", "lower95 now"],
                     "Counting each held-out token once: the labels it withholds in stored runs", notes,
                     summary=counts)
  return 0


if __name__ == "__main__":
  sys.exit(main())
