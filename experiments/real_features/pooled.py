"""One table for several slices of the latent sample labeled by real_features.py (e.g. --skip=32 --first=32, then
--skip=64): medians over the pooled latents, and paired counts between methods on the same latents (`--kind=neurons`:
the neurons' rows, for one run or several).

  python experiments/real_features/pooled.py --name=real_features_qwen2.5-coder-1.5b_pooled \
      real_features_qwen2.5-coder-1.5b_next32 real_features_qwen2.5-coder-1.5b_rest

Medians of slices do not add up to the median of their union, so the rows are pooled and summarized again (with
real_features.summarize, the function each slice's own summary came from). Only slices run with the same command
but for --skip/--first/--name belong together; the script refuses others. It cannot see the code a slice ran with
(a result file does not record it): a slice from before a change of the rule must be left out by hand. Paired
counts: on how many latents one method's held-out AUC is above the other's, below it, or equal, with a two-sided
sign test (ties left out).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from experiments.real_features import real_features  # pylint: disable=g-import-not-at-top

# (method, other): the comparisons issues 25 and 27 ask about.
PAIRS = (("combined", "ours"), ("combined", "explainer"), ("ours", "explainer"), ("ours", "top token"),
         ("ours", "exact scan"))
BASELINES = {"top token": "top_token", "exact scan": "vocab_scan"}


def auc(row: dict, method: str, judge: str) -> float:
  """A latent's held-out AUC for one method under the namer ("heldout_auc") or the scorer ("scorer_auc")."""
  return float(slot(row, method)[judge])


def slot(row: dict, method: str) -> dict | None:
  """The part of a feature's row that holds one method's AUCs (None where the run did not make that method)."""
  if method in BASELINES:
    return row["baselines"].get(BASELINES[method])
  return row if method == "ours" else row.get(method)


def counts(diffs: list[float]) -> dict:
  """How many differences are above, below and at zero, and the sign test of the split."""
  better, worse = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
  return {"better": better, "worse": worse, "equal": len(diffs) - better - worse,
          "sign test p": common.sign_test(better, worse)}


def paired(rows: list[dict], judge: str) -> list[dict]:
  """For each pair of methods that every feature holds, on how many features the first's AUC under `judge` is above
  the second's."""
  held = [(a, b) for a, b in PAIRS if all(slot(r, a) is not None and slot(r, b) is not None for r in rows)]
  return [{"judge": {"heldout_auc": "namer", "scorer_auc": "scorer"}[judge], "method": a, "against": b,
           **counts([auc(r, a, judge) - auc(r, b, judge) for r in rows])} for a, b in held]


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("slices", nargs="+", help="result names under experiments/results (without .json)")
  ap.add_argument("--name", required=True, help="the pooled result's name")
  ap.add_argument("--kind", default="latents", choices=("latents", "neurons"), help="which rows of the slices")
  ap.add_argument("--versus", default="", help="instead: our labels of the slices against our labels of these "
                  "results (comma-separated: another rule on the same features), paired by feature")
  args = ap.parse_args()
  runs = []
  for name in args.slices:
    with open(os.path.join(common.RESULTS, name + ".json"), encoding="utf-8") as f:
      runs.append(json.load(f))
  setting = {re.sub(r" --(skip|first|name)=\S+", "", r["command"]) for r in runs}
  if len(setting) != 1:
    sys.exit("These slices were run with different settings (not only --skip/--first/--name), so their latents "
             "do not pool:\n  " + "\n  ".join(sorted(setting)))
  kind = args.kind
  rows = [r for run in runs for r in run.get(kind, [])]
  if not rows:
    sys.exit(f"These slices hold no {kind}; pass --kind=latents or --kind=neurons to match what they labeled.")
  ids = [r["id"] for r in rows]
  if len(set(ids)) != len(ids):
    sys.exit(f"A feature appears in more than one slice of the {kind}; pass slices that do not overlap.")
  if args.versus:
    return versus(args, rows, setting.pop())
  if not all("scorer_auc" in r for r in rows):
    sys.exit(f"Pooling needs every feature of the {kind} scored by the independent scorer (run with --scorer_model).")
  summary = real_features.summarize({kind: rows})[kind]
  summary["slices"] = {name: len(run.get(kind, [])) for name, run in zip(args.slices, runs)}
  table = paired(rows, "heldout_auc") + paired(rows, "scorer_auc")
  s = summary
  methods = [("ours", ""), ("explainer", "explainer_"), ("combined", "combined_"), ("top token", "top_token_"),
             ("exact scan", "vocab_scan_"), ("random", "random_")]
  shares = [("ours", "share_auc_ge_0.8"), ("explainer", "explainer_share_auc_ge_0.8"),
            ("combined", "combined_share_auc_ge_0.8")]
  notes = (f"{s['n']} {kind} from {len(runs)} slices, run as `{setting.pop()}` with the slices' --skip/--first. "
           "Median held-out AUC, namer / scorer: "
           + ", ".join(f"{m} {s[f'median_{k}auc']:.3f} / {s[f'median_{k}scorer_auc']:.3f}"
                       for m, k in methods if f"median_{k}auc" in s)
           + f"; token lookup {s['median_token_lookup_auc']:.3f}. Share at AUC >= 0.8 (namer): "
           + ", ".join(f"{m} {s[k]:.0%}" for m, k in shares if k in s)
           + f". Labels withheld as not above chance: {s['no_label']}. The table: paired counts on the same {kind}.")
  common.write_table(args.name, table, ["judge", "method", "against", "better", "worse", "equal", "sign test p"],
                     f"Pooled slices of the {kind} sample: medians and paired counts", notes, summary=summary)


def versus(args, rows: list[dict], command: str) -> None:
  """Our labels in the slices against our labels in --versus, on the features both hold: medians and paired counts
  under the namer and the scorer (what changing the choice rule did, feature by feature)."""
  other = {}
  for result in args.versus.split(","):
    with open(os.path.join(common.RESULTS, result + ".json"), encoding="utf-8") as f:
      other.update({r["id"]: r for r in json.load(f).get(args.kind, [])})
  pairs = [(r, other[r["id"]]) for r in rows if r["id"] in other]
  if not pairs:
    sys.exit(f"{args.versus} holds none of these {args.kind}; pass a result of the same features.")
  table = []
  for judge, name in (("heldout_auc", "namer"), ("scorer_auc", "scorer")):
    if not all(judge in a and judge in b for a, b in pairs):  # a run made without --scorer_model: the namer alone
      continue
    table.append({"judge": name, "median, these": statistics.median(float(a[judge]) for a, _ in pairs),
                  "median, versus": statistics.median(float(b[judge]) for _, b in pairs),
                  **{f"median, {baseline}": statistics.median(auc(a, baseline, judge) for a, _ in pairs)
                     for baseline in BASELINES if all(slot(a, baseline) is not None for a, _ in pairs)},
                  **counts([float(a[judge]) - float(b[judge]) for a, b in pairs]),
                  **{f"{k}, against the top token": v for k, v in counts(
                      [float(a[judge]) - auc(a, "top token", judge) for a, _ in pairs]).items()
                     if k in ("better", "worse")}})
  same = sum((a.get("label") or a.get("best_candidate")) == (b.get("label") or b.get("best_candidate"))
             for a, b in pairs)
  notes = (f"{len(pairs)} {args.kind}, run as `{command}`, against the same {args.kind} in {args.versus}: the same "
           f"label (or best candidate) on {same}. The table: medians and paired counts of held-out AUC.")
  common.write_table(args.name, table, list(table[0]), f"Our labels against {args.versus}, {args.kind} paired",
                     notes, summary={"n": len(pairs), "same_label": same, "versus": args.versus, "rows": table})


if __name__ == "__main__":
  main()
