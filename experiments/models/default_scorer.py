"""The default model's shipped labels on the test half under an independent scorer.

  python experiments/models/default_scorer.py

The 1.5B model labels with the ask rule (ask_end~0.2), whose test-half run (experiments/naming/chooser.py) went
without an independent scorer: the likelihood prompt on the 1.5B model takes about a minute a label. This scores each
category's ask-rule label (withheld or not: the median takes every category's best candidate, as the README's medians
do), its top token and its set namer label with the 135M model's likelihood prompt, a judge none of them was
optimized against, on the held-out examples the naming run used (its threshold and seed). Resumes from its own
result file. Writes experiments/results/models_default_scorer.{md,json}.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top

MODEL, SCORER, RULE = "qwen2.5-coder-1.5b", "smollm2-135m-instruct", "ask_end~0.2"
NAME = "models_default_scorer"


def main():
  from absl import logging  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import baselines, data as data_lib  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.WARNING)
  with open(os.path.join(common.RESULTS, f"naming_chooser_test_{MODEL}.json"), encoding="utf-8") as f:
    stored = {r["category"]: r for r in json.load(f)["summary"]["rows"]}
  cats = common.categories("test")
  settings = {"model": MODEL, "rule": RULE, "scorer_model": SCORER}
  rows = [r for r in common.earlier_run(NAME, settings)[0] if r["category"] in stored]
  done = {r["category"] for r in rows}
  scorer_m, lcfg = load_model(SCORER, verbose=False), LabelConfig(steps=0)
  t0 = time.time()
  for c in cats:
    if c["name"] in done:
      continue
    feature = data_lib.load_features(c["path"])[0]
    s = stored[c["name"]]
    top = baselines.top_token(feature, lcfg.threshold)
    labels = {"ask rule": s[RULE], "set namer": s["shipped"], "top token": top}
    got = common.scorer_aucs(scorer_m, feature, lcfg, list(labels.values()))
    rows.append({"category": c["name"], **labels, **{f"{k} scorer AUC": got.get(v, 0.5) for k, v in labels.items()}})
    print(f"{len(rows)}/{len(cats)} {c['name']}: {s[RULE]!r} {got.get(s[RULE], 0.5):.3f} ({time.time() - t0:.0f}s)",
          flush=True)
    write(settings, rows, len(cats))


def write(settings: dict, rows: list[dict], total: int) -> None:
  kinds = ("ask rule", "set namer", "top token")
  summary = dict(settings, features=len(rows), **{
      f"median scorer AUC, {k}": float(np.median([r[f"{k} scorer AUC"] for r in rows])) for k in kinds})
  notes = ((f"Partial: {len(rows)} of {total}. " if len(rows) < total else "")
           + f"Median held-out AUC under the likelihood prompt of {SCORER}: "
           + ", ".join(f"{k} **{summary[f'median scorer AUC, {k}']:.3f}**" for k in kinds) + ".")
  common.write_table(NAME, rows, ["category", *[c for k in kinds for c in (k, f"{k} scorer AUC")]],
                     f"The default model's labels ({MODEL}, {RULE}) on the test half under an independent scorer",
                     notes, summary=summary)


if __name__ == "__main__":
  main()
