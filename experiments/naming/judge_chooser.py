"""The paper's yes/no judge as the chooser among the 1.5B namer's best candidates (plan_judge_chooser.md, declared
before any run).

  python experiments/naming/judge_chooser.py --split tune --limit 24     # the pilot: about 3 minutes per category
  python experiments/naming/judge_chooser.py --split fresh               # the test, only if the pilot passes its bar

Reads the stored naming run and the chooser's stored candidates of the same split (chooser.py; nothing is
relabeled, so `judge@10` and `ask_end~0.2` choose from the same labeling run). The rule `judge@10`: the first 10 of
the candidates `ask_end~0.2` compares (one per word, within 0.2 of the lowest namer validation loss), each scored by
the judge as a hard label on 32 validation examples of the feature; the highest judge validation AUC wins, ties to
the lower namer validation loss. The chosen labels of both rules are also scored by the judge on 32 held-out
examples (the pool's other candidates only on validation: the judge's cost is one short pass per label and
example). A cut run resumes from the rows already written.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from experiments.naming import chooser  # pylint: disable=g-import-not-at-top

POOL, N_VAL, N_HELDOUT = 10, 32, 32
PILOT_BAR, ADOPTION_BAR = 3, 6  # the plan's: 3 more named of the 24 to go on; 6 more on the fresh set to adopt


def order(cats: list[dict], split: str) -> list[dict]:
  """The plan's order: the tuning half by the sha256 of the name (the pilot takes the first 24); other splits as
  listed."""
  return common.by_name_hash(cats) if split == "tune" else cats


def pool(cands: list[dict]) -> list[dict]:
  """The first POOL of the candidates the ask rule compares: within its margin of the lowest validation loss."""
  return [c for c in cands if c["val_loss"] <= cands[0]["val_loss"] + chooser.END_MARGIN][:POOL]


def judge_choice(scored: list[dict]) -> dict:
  """The highest judge validation AUC; ties to the earlier candidate (max keeps the first), which has the lower
  namer validation loss. Validation always holds both classes (labeling.build_splits refuses it otherwise)."""
  return max(scored, key=lambda c: c["judge val AUC"])


def judge_splits(m, feature):
  """The judge's prompts for N_VAL validation and N_HELDOUT held-out examples of the feature (no training ones)."""
  from tokenlabel_jax import discriminators as disc_lib, labeling  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=import-outside-toplevel
  return labeling.build_splits(m, feature, disc_lib.get("judge"),
                               LabelConfig(n_train=0, n_val=N_VAL, n_heldout=N_HELDOUT))


def judge_scores(m, split, ids: list[list[int]]) -> np.ndarray:
  """The judge's score of each hard label on each example of `split`: labels x examples."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import discriminators as disc_lib  # pylint: disable=import-outside-toplevel
  return np.asarray(disc_lib.hard_scores(m.params, m.cfg, disc_lib.get("judge"), split.prep,
                                         jnp.asarray(ids, jnp.int32)))


def row(m, c: dict, stored: dict, result: dict) -> dict:
  """One category: the pool with its judge validation AUCs, both rules' labels, whether each names the category,
  and both labels' held-out AUC under the judge (only the chosen two are run on held-out examples)."""
  from tokenlabel_jax import (  # pylint: disable=import-outside-toplevel
      data as data_lib, discriminators as disc_lib, evaluation, naming, splits)
  ids_of = {v["label"]: v["token_ids"] for v in result["verification"]}
  cands = stored["candidates"]
  ask = chooser.end_rule(cands)
  picked = pool(cands)
  texts = [p["label"] for p in picked]
  texts += [] if ask["label"] in texts else [ask["label"]]  # the ask rule's choice may lie beyond the pool
  lost = [t for t in texts if t not in ids_of]
  if lost:  # a remade labeling run that no longer holds the stored chooser's candidates
    sys.exit(f"{c['name']}: the labeling run has no candidate {lost[0]!r} of the stored chooser rows: it is not the "
             "run chooser.py read; make both again (chooser.py's docstring)")
  t0 = time.time()
  sp = judge_splits(m, data_lib.load_features(c["path"])[0])
  val_of = dict(zip(texts, judge_scores(m, sp["val"], [ids_of[t] for t in texts])))
  scored = [{"label": p["label"], "val_loss": p["val_loss"],
             "judge val AUC": evaluation.roc_auc(val_of[p["label"]], sp["val"].positive_B)} for p in picked]
  chosen = judge_choice(scored)
  both = [chosen["label"], ask["label"]]
  held = splits.rows_from_scores(disc_lib.get("judge"), np.stack([val_of[t] for t in both]),
                                 judge_scores(m, sp["heldout"], [ids_of[t] for t in both]), sp["val"], sp["heldout"])
  return {"category": c["name"], "names": c["names"],
          "judge@10": chosen["label"], "judge@10 names": naming.names_category(chosen["label"], c["names"]),
          "ask_end~0.2": ask["label"], "ask_end~0.2 names": naming.names_category(ask["label"], c["names"]),
          "judge@10 judge AUC": held[0]["auc"], "ask_end~0.2 judge AUC": held[1]["auc"],
          "judge@10 namer AUC": next(p["heldout_auc"] for p in picked if p["label"] == chosen["label"]),
          "ask_end~0.2 namer AUC": ask["heldout_auc"],
          "a name in the pool": any(naming.names_category(p["label"], c["names"]) for p in picked),
          "pool": scored, "s": round(time.time() - t0, 1)}


def summarize(rows: list[dict], split: str) -> dict:
  judge_n, ask_n = sum(r["judge@10 names"] for r in rows), sum(r["ask_end~0.2 names"] for r in rows)
  gained = sum(r["judge@10 names"] and not r["ask_end~0.2 names"] for r in rows)
  lost = sum(r["ask_end~0.2 names"] and not r["judge@10 names"] for r in rows)
  bar = PILOT_BAR if split == "tune" else ADOPTION_BAR

  def med(key):  # NaN when no row has the figure (a test's rows without AUCs), without numpy's warning
    got = [r[key] for r in rows if r[key] is not None and np.isfinite(r[key])]
    return float(np.median(got)) if got else float("nan")

  ranks = [name_rank(r) for r in rows if r["a name in the pool"]]
  return {"judge_names": judge_n, "ask_names": ask_n, "gained": gained, "lost": lost,
          "sign_test_p": common.sign_test(gained, lost), "name_in_pool": sum(r["a name in the pool"] for r in rows),
          "bar": bar, "passes": judge_n >= ask_n + bar,
          "median_judge_auc": {k: med(k + " judge AUC") for k in ("judge@10", "ask_end~0.2")},
          "median_namer_auc": {k: med(k + " namer AUC") for k in ("judge@10", "ask_end~0.2")},
          "name_first_under_judge": sum(k == 1 for k in ranks),
          "median_name_rank_under_judge": float(np.median(ranks)) if ranks else float("nan"),
          "median_s": float(np.median([r["s"] for r in rows]))}


def name_rank(r: dict) -> int:
  """Where the judge puts the category's name in the pool: 1 + the candidates with a higher validation AUC than the
  best-scored name (a diagnostic of the rule, read from the stored pool)."""
  from tokenlabel_jax import naming  # pylint: disable=import-outside-toplevel
  aucs = [p["judge val AUC"] for p in r["pool"]]
  best = max(a for a, p in zip(aucs, r["pool"]) if naming.names_category(p["label"], r["names"]))
  return 1 + sum(a > best for a in aucs)


def main():
  import argparse  # pylint: disable=import-outside-toplevel
  from absl import logging  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--model", default="qwen2.5-coder-1.5b")
  ap.add_argument("--split", default="tune", help="tune (the pilot) | fresh (the test)")
  ap.add_argument("--limit", type=int, default=0, help="the first N in the plan's order (the pilot: 24)")
  ap.add_argument("--run_dir", default="", help="the labeling run it reads (default experiments/runs/naming/"
                                                "<split>_<model>, naming_benchmark.py's with --tag _<model>)")
  ap.add_argument("--name", default="", help="the result file's name (default naming_judge_chooser_<split>_<model>): "
                                            "a rerun beside the first")
  args = ap.parse_args()
  logging.set_verbosity(logging.WARNING)
  cats = order(common.categories(args.split), args.split)[:args.limit or None]
  stored = {r["category"]: r for r in common.earlier_run(f"naming_chooser_{args.split}_{args.model}",
                                                          {"split": args.split,
                                                           "model": args.model})[1].get("rows", [])}
  run_dir = args.run_dir or os.path.join(common.HERE, "runs", "naming", f"{args.split}_{args.model}")
  missing = [c["name"] for c in cats if c["name"] not in stored
             or not os.path.exists(os.path.join(run_dir, c["name"], "result.json"))]
  if missing:
    sys.exit(f"{len(missing)} of {len(cats)} categories have no stored naming run or chooser row (first: "
             f"{missing[0]}): run naming_benchmark.py and chooser.py --end on --split {args.split} first "
             "(chooser.py's docstring).")
  name = args.name or f"naming_judge_chooser_{args.split}_{args.model}"
  settings = {"split": args.split, "model": args.model, "limit": args.limit}
  rows, summary = common.earlier_run(name, settings)
  rows = rows if [r["category"] for r in rows] == [c["name"] for c in cats[:len(rows)]] else []
  t0 = time.time() - float(summary.get("wall_s", 0.0)) if rows else time.time()
  m = load_model(args.model) if len(rows) < len(cats) else None  # all done: the tables are rewritten from the rows
  for c in cats[len(rows):]:
    with open(os.path.join(run_dir, c["name"], "result.json"), encoding="utf-8") as f:
      result = json.load(f)
    rows.append(row(m, c, stored[c["name"]], result))
    print(f"{len(rows)}/{len(cats)} {c['name']}: judge@10 {rows[-1]['judge@10']!r}, ask_end~0.2 "
          f"{rows[-1]['ask_end~0.2']!r} ({time.time() - t0:.0f}s)", flush=True)
    write(name, settings, rows, len(cats), t0)
  write(name, settings, rows, len(cats), t0)


def write(name: str, settings: dict, rows: list[dict], total: int, t0: float) -> None:
  s = summarize(rows, settings["split"])
  what = "go on to the fresh set" if settings["split"] == "tune" else "become the 1.5B model's default"
  notes = (f"{'Partial: %d of %d. ' % (len(rows), total) if len(rows) < total else ''}"
           f"`judge@10` names **{s['judge_names']}** of {len(rows)}, `ask_end~0.2` **{s['ask_names']}** "
           f"({s['gained']} gained, {s['lost']} lost, sign test p = {s['sign_test_p']:.2g}); a name is in the pool of "
           f"10 for {s['name_in_pool']}; there the judge ranks a name first for {s['name_first_under_judge']} (median "
           f"rank {s['median_name_rank_under_judge']:g} of 10). Declared bar to {what}: {s['bar']} more: "
           f"{'met' if s['passes'] else 'not met'}. Median held-out AUC of the chosen labels under the judge: "
           f"judge@10 {s['median_judge_auc']['judge@10']:.3f}, ask_end~0.2 {s['median_judge_auc']['ask_end~0.2']:.3f}; "
           f"under the namer: {s['median_namer_auc']['judge@10']:.3f} and {s['median_namer_auc']['ask_end~0.2']:.3f}. "
           f"Median {s['median_s']:.0f} s per category.")
  common.write_table(name, rows, ["category", "judge@10", "judge@10 names", "ask_end~0.2", "ask_end~0.2 names",
                                  "judge@10 judge AUC", "ask_end~0.2 judge AUC", "judge@10 namer AUC",
                                  "ask_end~0.2 namer AUC", "a name in the pool", "s"],
                     f"The judge as the chooser among the namer's best 10 ({settings['split']}, {settings['model']})",
                     notes, summary=dict(settings, **s, wall_s=round(time.time() - t0, 1)))


if __name__ == "__main__":
  main()
