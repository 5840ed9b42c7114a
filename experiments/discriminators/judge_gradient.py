"""The paper's judge with the gradient on a chat model, beside the namer, on a small declared sample
(plan_judge_gradient.md: the naming benchmark's test half by the sha256 of the name, the first --n_test, plus three
features whose names are several tokens).

  python experiments/discriminators/judge_gradient.py --model qwen2.5-coder-1.5b      # about 6 minutes per feature

Each feature is labeled twice: by the judge with a short gradient run (the settings below, fixed in the plan), and by
the namer at the model's defaults. Both labels, and each of the category's names, are then scored by the judge on the
judge run's held-out examples, so that the two methods and the names meet under one discriminator. A cut run resumes
from the rows already written; a larger --n_test keeps them and adds the next categories.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import data as data_lib, discriminators as disc_lib, labeling, naming, selection
from tokenlabel_jax.optimization import LabelConfig

NAME = "judge_gradient"
EXTRA = ["body_part", "musical_instrument", "mammal"]  # names of several tokens; tuned on before: described only


def sample(n_test: int) -> list[dict]:
  """The plan's sample: the first `n_test` test categories by the sha256 of their names, then EXTRA."""
  test = common.by_name_hash(common.categories("test"))
  concepts = {c["name"]: c for c in common.categories("concepts")}
  return [dict(c, split="test") for c in test[:n_test]] + [dict(concepts[n], split="tuned on") for n in EXTRA]


def main():
  args, m, _ = common.setup(NAME, __doc__, steps=40, **{
      "--n_test": dict(type=int, default=6), "--seeds": dict(type=int, default=1),
      "--batch_size": dict(type=int, default=8), "--n_train": dict(type=int, default=32),
      "--n_val": dict(type=int, default=24), "--n_heldout": dict(type=int, default=32),
      "--name": dict(default=NAME, help="result file name under experiments/results/")})
  judge, namer = disc_lib.get("judge"), disc_lib.get("namer")
  lcfg = LabelConfig(steps=args.steps, seeds=args.seeds, batch_size=args.batch_size, n_train=args.n_train,
                     n_val=args.n_val, n_heldout=args.n_heldout)
  settings = {k: getattr(args, k) for k in ("model", "steps", "seeds", "batch_size", "n_train", "n_val", "n_heldout")}
  cats = sample(args.n_test)
  earlier, summary = common.earlier_run(args.name, settings)
  done = {r["category"]: r for r in earlier if r["category"] in {c["name"] for c in cats}}
  t0 = time.time() - float(summary.get("wall_s", 0.0)) if done else time.time()
  for c in cats:  # a row already made is kept (a cut run, or a sample extended by the plan's rule)
    if c["name"] in done:
      continue
    feature = data_lib.load_features(c["path"])[0]
    t1 = time.time()
    nr = labeling.label_features(m, [feature], namer, LabelConfig(steps=0), os.path.join(args.out, "namer"),
                                 (), True, None, selection.SelectConfig(), plots=False)[0]
    namer_s = time.time() - t1
    refs = list(dict.fromkeys(([nr["label"].strip()] if nr["label"] else []) + c["names"]))
    jr = labeling.label_features(m, [feature], judge, lcfg, os.path.join(args.out, "judge"), {c["name"]: refs},
                                 True, None, selection.SelectConfig(), plots=False)[0]
    done[c["name"]] = row(m, c, nr, jr, namer_s)
    _write(args, [done[x["name"]] for x in cats if x["name"] in done], cats, settings, t0)


def row(m, c: dict, nr: dict, jr: dict, namer_s: float) -> dict:
  """One table row: both labels, whether each names the category, and every label and name under the judge."""
  ref = jr["references"]
  names = {n: ref[n]["auc"] for n in c["names"] if n in ref}
  best_name = max(names, key=names.get) if names else None
  by_val = sorted(jr["verification"], key=lambda v: v["val_loss"])
  return {
      "category": c["name"], "split": c["split"], "names": c["names"],
      "judge label": jr["label"], "judge names": naming.names_category(jr["label"], c["names"]),
      "judge AUC": jr["heldout"]["auc"], "judge source": jr["source"],
      "namer label": nr["label"], "namer names": naming.names_category(nr["label"], c["names"]),
      "namer AUC": nr["heldout"]["auc"],
      "namer label, judge AUC": ref[nr["label"].strip()]["auc"] if nr["label"] else float("nan"),
      "first name, judge AUC": names.get(c["names"][0], float("nan")),
      "best name": best_name, "best name, judge AUC": names.get(best_name, float("nan")),
      "best name tokens": len(disc_lib.encode_label(m.tokenizer, best_name)) if best_name else 0,
      "name beats judge label": bool(best_name and names[best_name] > jr["heldout"]["auc"]),
      "judge top 5 by validation": [v["label"] for v in by_val[:5]],
      "names, judge AUC": names, "judge s": jr["wall_time_s"], "namer s": round(namer_s, 1)}


def _write(args, rows, cats, settings, t0):
  test = [r for r in rows if r["split"] == "test"]
  summary = dict(settings, features=len(rows), test=len(test),
                 judge_names=sum(r["judge names"] for r in test), namer_names=sum(r["namer names"] for r in test),
                 judge_names_all=sum(r["judge names"] for r in rows),
                 namer_names_all=sum(r["namer names"] for r in rows),
                 name_beats_judge_label=sum(r["name beats judge label"] for r in rows),
                 first_name_beats_judge_label=sum(r["first name, judge AUC"] > r["judge AUC"] for r in rows),
                 median_judge_auc=float(np.nanmedian([r["judge AUC"] for r in rows])),
                 median_namer_label_judge_auc=float(np.nanmedian([r["namer label, judge AUC"] for r in rows])),
                 median_first_name_judge_auc=float(np.nanmedian([r["first name, judge AUC"] for r in rows])),
                 median_best_name_judge_auc=float(np.nanmedian([r["best name, judge AUC"] for r in rows])),
                 median_judge_s=float(np.median([r["judge s"] for r in rows])), wall_s=round(time.time() - t0, 1))
  notes = (f"Test sample: the judge with the gradient names the category for **{summary['judge_names']} of "
           f"{len(test)}**, the namer for **{summary['namer_names']}** (all {len(rows)} features: "
           f"{summary['judge_names_all']} and {summary['namer_names_all']}). Under the judge, on its held-out "
           f"examples, median AUC: its own label {summary['median_judge_auc']:.3f}, the namer's label "
           f"{summary['median_namer_label_judge_auc']:.3f}, the category's first-listed name "
           f"{summary['median_first_name_judge_auc']:.3f} (the best of its names "
           f"{summary['median_best_name_judge_auc']:.3f}, a best of several); the first-listed name beats the judge's "
           f"own label on {summary['first_name_beats_judge_label']} of {len(rows)}, the best name on "
           f"{summary['name_beats_judge_label']}. Median {summary['median_judge_s']:.0f} s per "
           f"feature for the judge run.")
  if len(rows) < len(cats):
    notes = f"Partial: {len(rows)} of {len(cats)} features so far. " + notes
  common.write_table(args.name, rows, ["category", "split", "judge label", "judge names", "judge AUC", "namer label",
                                       "namer names", "namer label, judge AUC", "first name, judge AUC", "best name",
                                       "best name, judge AUC", "best name tokens", "judge top 5 by validation",
                                       "judge s"],
                     f"The paper's judge with the gradient on {args.model}, beside the namer",
                     notes, summary=summary)


if __name__ == "__main__":
  main()
