"""The two models' agreement as a sign that a label names the category (plan_norms2.md, questions 2 and 3).

  python experiments/naming/agreement.py

Per set, the default model's label (smollm2-135m-instruct, coverage rule) beside the 1.5B model's (its default, the
ask rule), both as the stored runs give them, with the chance check that counts each held-out token once:
- the test half and the fresh set: naming_{test,fresh}_scan.json and the ask rule rebuilt from the chooser's stored
  candidates (distinct_bound.ask_rows), the bound applied to both;
- the norms sets: the second runs in naming_norms.json and the runs in naming_norms2.json.
Labels agree when either is a name of the other under the benchmark's judge (`same_name`). Reported per set: how
often the agreed label names the category, how often each model's label does where they differ (one-sided Fisher
exact test of agreed against the 135M model's differing labels), and the hindsight bound (either model names it).
The first three sets were looked at before the plan was written; norms2 is the test. Writes
experiments/results/naming_agreement.{md,json}.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import naming, selection  # pylint: disable=g-import-not-at-top
from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=g-import-not-at-top

SETS = [("test", "seen"), ("fresh", "seen"), ("norms", "seen"), ("norms2", "the test (plan_norms2.md)")]


def same_name(a: str | None, b: str | None) -> bool:
  """True iff both labels are given and either is a name of the other (case, spacing, a regular plural ignored:
  ' state' and ' States'); a withheld label agrees with nothing."""
  return bool(a) and bool(b) and (naming.names_category(a, [b]) or naming.names_category(b, [a]))


def _stored(result: str) -> dict[str, dict]:
  with open(os.path.join(common.RESULTS, result + ".json"), encoding="utf-8") as f:
    return json.load(f)


def pairs(set_name: str) -> dict[str, dict]:
  """{category: {"small": label, "small names": bool, "large": label, "large names": bool}}, a label withheld by the
  chance check (each held-out token counted once) as None."""
  if set_name in ("norms", "norms2"):
    return {r["category"]: {"small": r["135m label"], "small names": bool(r["135m names"]),
                            "large": r["1.5b label"], "large names": bool(r["1.5b names"])}
            for r in _stored(f"naming_{set_name}")["rows"]}
  from experiments.naming import distinct_bound  # pylint: disable=import-outside-toplevel
  lcfg, bar = LabelConfig(), selection.SelectConfig().min_auc_lower
  cats = {c["name"]: c for c in common.categories(set_name)}
  small = {r["category"]: r for r in _stored(f"naming_{set_name}_scan")["rows"]}
  large = distinct_bound.ask_rows(f"naming_chooser_{set_name}_qwen2.5-coder-1.5b")
  out = {}
  for name, s in small.items():
    _, distinct = distinct_bound.heldout_counts(cats[name]["path"], lcfg)
    row = {}
    for key, r in (("small", s), ("large", large[name])):
      kept = r["label"] is not None and distinct_bound.bound(r["heldout AUC"], *distinct) > bar
      row |= {key: r["label"] if kept else None, f"{key} names": kept and bool(r["names"])}
    out[name] = row
  return out


def summarize(rows: dict[str, dict]) -> dict:
  """Counts over `rows` ({category: pairs()' row}); "agreed, not named" lists the shared misses."""
  agreed = {c: r for c, r in rows.items() if same_name(r["small"], r["large"])}
  differ = [r for c, r in rows.items() if c not in agreed]
  a_named = sum(r["small names"] for r in agreed.values())
  d_small, d_large = sum(r["small names"] for r in differ), sum(r["large names"] for r in differ)
  return {"categories": len(rows), "agree": len(agreed), "agreed named": a_named,
          "differ": len(differ), "differ: 135M named": d_small, "differ: 1.5B named": d_large,
          "135M named": sum(r["small names"] for r in rows.values()),
          "1.5B named": sum(r["large names"] for r in rows.values()),
          "either named (hindsight)": sum(r["small names"] or r["large names"] for r in rows.values()),
          "p (agreed > 135M differing)": common.fisher_greater(a_named, len(agreed) - a_named, d_small,
                                                               len(differ) - d_small),
          "agreed, not named": [f"{c} {r['small']!r}" for c, r in agreed.items() if not r["small names"]]}


def main() -> int:
  table, per_set, seen_rows = [], {}, {}
  for set_name, status in SETS:
    rows = pairs(set_name)
    if status == "seen":
      seen_rows |= {f"{set_name}/{c}": r for c, r in rows.items()}
    per_set[set_name] = summarize(rows) | {"status": status}
    table.append({"set": set_name, **per_set[set_name]})
  pooled = summarize(seen_rows)
  table.append({"set": "the three seen sets", "status": "seen", **pooled})
  t = per_set["norms2"]
  rate = t["agreed named"] / max(t["agree"], 1)
  confirmed = rate >= 0.7 and t["p (agreed > 135M differing)"] < 0.05
  notes = (f"Declared test (plan_norms2.md): on norms2 the agreed labels name the category for {t['agreed named']} of "
           f"{t['agree']} ({rate:.0%}); where the labels differ the 135M model's names it for "
           f"{t['differ: 135M named']} of {t['differ']} and the 1.5B model's for {t['differ: 1.5B named']} (one-sided "
           f"Fisher p = {t['p (agreed > 135M differing)']:.2g}): "
           + ("confirmed" if confirmed else "not confirmed") + " (bar: at least 70% and p < 0.05). Agreed there "
           f"but not naming the category: {', '.join(t['agreed, not named'])}. The three seen "
           f"sets, looked at before the plan: {pooled['agreed named']} of {pooled['agree']} agreed labels name the "
           f"category, against {pooled['differ: 135M named']} and {pooled['differ: 1.5B named']} of "
           f"{pooled['differ']} differing ones. Hindsight bound (whichever model names it): "
           + ", ".join(f"{n} {per_set[n]['either named (hindsight)']} of {per_set[n]['categories']}"
                       for n, _ in SETS) + ".")
  columns = ["set", "status", "categories", "135M named", "1.5B named", "agree", "agreed named", "differ",
             "differ: 135M named", "differ: 1.5B named", "p (agreed > 135M differing)", "either named (hindsight)"]
  common.write_table("naming_agreement", table, columns,
                     "Two models agreeing: how often an agreed label names the category", notes,
                     summary={"sets": per_set, "seen pooled": pooled, "confirmed": confirmed})
  return 0


if __name__ == "__main__":
  sys.exit(main())
