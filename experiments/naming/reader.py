"""The test half's labels read as a person would read them, beside the automatic judge (no model is run).

  python experiments/naming/reader.py --sheet   # the reading sheet: every distinct (category, label) pair, no method
  python experiments/naming/reader.py --score   # after the verdicts are written: the counts, per method
  python experiments/naming/reader.py --set fresh --sheet   # the same for the fresh set (then --set fresh --score)

The plan, declared before the sheet was made: experiments/naming/plan_reader.md. The verdicts are in
experiments/naming/reader_verdicts.json ({pair id: name | broader | narrower | related}, both sets); the sheets are
experiments/naming/reader_sheet.md (test half) and reader_sheet_fresh.md. Needs the benchmark's records
(scripts/make_benchmark.py, and --fresh) for the chance check. Writes experiments/results/naming_reader.{md,json}
(test half) and naming_reader_fresh.{md,json}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from experiments.naming import distinct_bound, word_bound  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import naming  # pylint: disable=g-import-not-at-top

HERE = os.path.dirname(os.path.abspath(__file__))
VERDICTS = os.path.join(HERE, "reader_verdicts.json")
KINDS = ("name", "broader", "narrower", "related")
DEFAULT = "default (1.5B, ask rule)"
CHOOSER = {"test": "naming_chooser_test_qwen2.5-coder-1.5b", "fresh": "naming_chooser_fresh_qwen2.5-coder-1.5b"}


def sheet_path(set_name: str) -> str:
  return os.path.join(HERE, "reader_sheet.md" if set_name == "test" else f"reader_sheet_{set_name}.md")


def _rows(result: str, key: str) -> dict[str, dict]:
  with open(os.path.join(common.RESULTS, result + ".json"), encoding="utf-8") as f:
    return {r[key]: r for r in json.load(f)["rows"]}


def labels(set_name: str) -> dict[str, dict[str, tuple[str, float]]]:
  """{method: {category: (label as stored, held-out AUC)}}, the default first: a withheld label is read by its best
  candidate."""
  ask = distinct_bound.ask_rows(CHOOSER[set_name])
  out = {DEFAULT: {k: (r["label"], r["heldout AUC"]) for k, r in ask.items()}}
  if set_name == "test":
    small = _rows("naming_test_scan", "category")
    expl = _rows("explainer_test_qwen2.5-coder-1.5b", "feature")
    return out | {"135M (coverage rule)": {k: (r["label"] or r["best_candidate"], r["heldout AUC"]) for k, r in small.items()},
                  "exact scan (1.5B)": {k: (r["exact scan label"], r["exact scan AUC"]) for k, r in expl.items()},
                  "top token": {k: (r["top token label"], r["top token AUC"]) for k, r in expl.items()},
                  "explainer (1.5B)": {k: (r["explainer label"], r["explainer AUC"]) for k, r in expl.items()}}
  small, big = _rows("naming_fresh_scan", "category"), _rows("naming_fresh_qwen2.5-coder-1.5b", "category")
  base = _rows("naming_fresh_baselines", "category")
  return out | {"1.5B (set namer rule)": {k: (r["label"] or r["best_candidate"], r["heldout AUC"]) for k, r in big.items()},
                "135M (coverage rule)": {k: (r["label"] or r["best_candidate"], r["heldout AUC"]) for k, r in small.items()},
                "exact scan (1.5B)": {k: (r["scan label"], r["scan AUC"]) for k, r in big.items()},
                "top token": {k: (r["top label"], r["top AUC"]) for k, r in base.items()}}


def pair_id(category: str, label: str) -> str:
  return hashlib.sha256(f"{category}|{label}".encode()).hexdigest()[:10]


def _shown(label: str) -> str:
  return repr(label) if label != label.strip() or not label else label


def write_sheet(set_name: str, cats: dict[str, dict], by_method: dict) -> int:
  words = {r["category"]: r["words"] for r in json.load(open(
      os.path.join(common.RESULTS, CHOOSER[set_name] + ".json"), encoding="utf-8"))["summary"]["rows"]}
  pairs = {pair_id(c, lab): (c, lab) for m in by_method.values() for c, (lab, _) in m.items() if lab}
  lines = ["# Reading sheet: is the label a name of the category? (plan_reader.md)", "",
           "Verdicts: name, broader, narrower, related. Pairs in the order of their id; no method is shown.", "",
           "| id | category | gloss | positive words | label |", "|---|---|---|---|---|"]
  for pid, (c, lab) in sorted(pairs.items(), key=lambda kv: kv[0]):
    head = cats[c]["synset"].split(".")[0].replace("_", " ")
    lines.append(f"| {pid} | {head} | {cats[c]['gloss']} | {', '.join(words[c])} | {_shown(lab)} |")
  with open(sheet_path(set_name), "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  return len(pairs)


def score(set_name: str, cats: dict[str, dict], by_method: dict) -> None:
  with open(VERDICTS, encoding="utf-8") as f:
    verdicts = json.load(f)
  summary, disagree, named = {}, [], {}  # named: (method, judge) -> the categories named, labels given
  for method, got in by_method.items():
    counts = {"categories": len(got)}
    for scope in ("as stored", "given"):
      cross = {"both": 0, "reader only": 0, "judge only": 0, "neither": 0}
      kinds = dict.fromkeys(KINDS + ("withheld", "none"), 0)
      for c, (lab, auc) in got.items():
        given = bool(lab) and (scope == "as stored" or word_bound.given(auc, cats[c]["path"]))
        v = verdicts[pair_id(c, lab)] if lab else "none"
        reader = given and v == "name"
        judge = given and naming.names_category(lab, cats[c]["names"])
        cross[("both" if judge else "reader only") if reader else ("judge only" if judge else "neither")] += 1
        kinds[v if given else ("withheld" if lab else "none")] += 1
        if scope == "given":
          named.setdefault((method, "reader"), set()).update([c] if reader else [])
          named.setdefault((method, "judge"), set()).update([c] if judge else [])
        if scope == "given" and reader != judge:
          disagree.append({"method": method, "category": c, "label": lab, "reader": v, "judge": judge})
      counts[scope] = {"reader names": cross["both"] + cross["reader only"],
                       "judge names": cross["both"] + cross["judge only"], **cross, "verdicts": kinds}
    summary[method] = counts
  pairs = {}  # the default against each other method, category by category, under either judge
  for other in list(by_method)[1:]:
    for judge in ("reader", "judge"):
      a, b = (named[(DEFAULT, judge)], named[(other, judge)])
      better, worse = len(a - b), len(b - a)
      pairs[f"default vs {other}, {judge}"] = {"default only": better, "other only": worse,
                                               "p (sign test)": float(f"{common.sign_test(better, worse):.2g}")}
  rows = [{"method": m, "reader names": s["given"]["reader names"], "judge names": s["given"]["judge names"],
           "both": s["given"]["both"], "reader only": s["given"]["reader only"],
           "judge only": s["given"]["judge only"], "broader": s["given"]["verdicts"]["broader"],
           "narrower": s["given"]["verdicts"]["narrower"], "related": s["given"]["verdicts"]["related"],
           "withheld": s["given"]["verdicts"]["withheld"] + s["given"]["verdicts"]["none"],
           "reader names, every label as stored": s["as stored"]["reader names"],
           "judge names, every label as stored": s["as stored"]["judge names"]} for m, s in summary.items()]
  seen, unique = set(), []
  for d in disagree:  # one line per pair: a pair two methods share is one reading
    if (d["category"], d["label"]) not in seen:
      seen.add((d["category"], d["label"]))
      unique.append(d)
  notes = (f"The {len(cats)} categories of the {'test half' if set_name == 'test' else set_name + ' set'}. Counts of labels given (withheld by the chance check counting words: a miss), "
           "then of every label as stored. The default against each other method, categories only it names / "
           "only the other names (two-sided sign test), labels given: "
           + "; ".join(f"{k}: {v['default only']} / {v['other only']} (p = {v['p (sign test)']})" for k, v in pairs.items())
           + ". Pairs where the two disagree: "
           + "; ".join(f"{d['category']} {d['label']!r} ({'reader: ' + d['reader'] if not d['judge'] else 'judge only, reader: ' + d['reader']})"
                       for d in sorted(unique, key=lambda d: (d["judge"], d["category"]))) + ".")
  title = f"The {'test half' if set_name == 'test' else set_name + ' set'}'s labels read as a person would read them"
  common.write_table("naming_reader" + ("" if set_name == "test" else f"_{set_name}"), rows, list(rows[0]), title,
                     notes, summary={"methods": summary, "default against the others": pairs, "disagreements": unique,
                              "named (labels given)": {f"{m} / {j}": sorted(v) for (m, j), v in named.items()}, "pairs read": len(verdicts)})


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sheet", action="store_true", help="write the reading sheet")
  parser.add_argument("--score", action="store_true", help="count the verdicts")
  parser.add_argument("--set", default="test", choices=("test", "fresh"), help="the benchmark's test half, or the "
                      "fresh set")
  args = parser.parse_args()
  cats = {c["name"]: c for c in common.categories(args.set)}
  by_method = labels(args.set)
  if args.sheet:
    print(f"{write_sheet(args.set, cats, by_method)} pairs -> {sheet_path(args.set)}")
  if args.score:
    score(args.set, cats, by_method)
  return 0


if __name__ == "__main__":
  sys.exit(main())
