"""Typicality probe on the naming benchmark's tuning half: does the reverse direction pick the category's name?

  python experiments/naming/probes/naming_typicality.py --limit 60  # probe (namer candidates + their typicality)
  python experiments/naming/probes/naming_typicality.py --analyze  # rules on the saved probe -> results table

Per tuning category: the namer's 16 best candidates by calibrated validation loss (exact scan and two-token
extensions of the best 4 first tokens), each with its typicality (selection.typicality: the likelihood prompt's
log P(word | "Examples of<label>:") - log P(word | "Examples of things:"), mean over positive validation examples).
The analysis compares choice rules. Saved probe: experiments/results/naming_typicality_probe.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

from experiments import common  # pylint: disable=g-import-not-at-top

PROBE = os.path.join(common.RESULTS, "naming_typicality_probe.json")


def probe(limit: int) -> None:
  from absl import logging  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import data as data_lib, discriminators as disc_lib, labeling, naming, selection
  from tokenlabel_jax import optimization as opt_lib
  from tokenlabel_jax.loading import load_model
  logging.set_verbosity(logging.WARNING)
  m = load_model("smollm2-135m-instruct")
  disc, lik, lcfg = disc_lib.get("namer"), disc_lib.get("likelihood"), opt_lib.LabelConfig()
  mask = disc_lib.word_like_mask(m.tokenizer, m.cfg.vocab_size)
  spec = json.load(open(os.path.join(common.HERE, "naming", "categories.json")))["categories"]
  cats = [c for c in spec if c["split"] == "tune"][:limit]
  scfg = selection.SelectConfig(extend_top=4)
  out, t0 = [], time.time()
  for c in cats:
    f = data_lib.load_features(os.path.join(common.DATA, "benchmark", c["name"] + ".jsonl"))[0]
    sp = labeling.build_splits(m, f, disc, lcfg)
    cands = selection.gather(m, disc, sp["val"], mask, (), scfg)
    selection.score(m, disc, cands, sp["val"], sp["heldout"])
    top = sorted(cands, key=lambda x: x.stats["val_loss"])[:16]
    typ = selection.typicality(m, f, sp["val"], top, lik)
    out.append({"name": c["name"], "names": c["names"], "cands": [
        {"label": x.text, "ids": x.ids, "names": naming.names_category(x.text, c["names"]), "typ": float(t), **x.stats}
        for x, t in zip(top, typ)]})
    with open(PROBE, "w") as fh:
      json.dump(out, fh)
    print(len(out), c["name"], f"{time.time() - t0:.0f}s", flush=True)


def analyze() -> None:
  cats = json.load(open(PROBE))

  def hits(rule):
    return sum(rule(c["cands"])["names"] for c in cats)

  def finalist_rule(k, margin):
    def rule(cs):
      order = sorted(cs, key=lambda r: r["val_loss"])
      fin = [r for r in order[:k] if r["val_loss"] <= order[0]["val_loss"] + margin]
      return max(fin, key=lambda r: r["typ"])
    return rule

  rows = [{"rule": "lowest validation loss (scan + extensions)", "names": hits(lambda cs: min(cs, key=lambda r:
                                                                                          r["val_loss"]))}]
  for k in (2, 3, 4, 6, 8, 16):
    for margin in (0.05, 0.1, 0.2, 1.0):
      rows.append({"rule": f"most typical of best {k} within {margin}", "names": hits(finalist_rule(k, margin))})
  for w in (0.02, 0.05, 0.1, 0.2):
    rows.append({"rule": f"lowest val loss - {w} x typicality",
                 "names": hits(lambda cs, w=w: min(cs, key=lambda r: r["val_loss"] - w * r["typ"]))})
  for r in rows:
    r.update(of=len(cats), rate=r["names"] / len(cats))
  recall = sum(any(r["names"] for r in c["cands"]) for c in cats)
  common.write_table("naming_typicality", rows, ["rule", "names", "of", "rate"],
                     f"Typicality rules on the naming benchmark's tuning half ({len(cats)} categories)",
                     f"A name of the category is among the 16 candidates for {recall} of {len(cats)}. The probe "
                     "was stopped after these categories for time; the default (best 4 within 0.1) was chosen here.",
                     command="python experiments/naming/probes/naming_typicality.py --analyze")


if __name__ == "__main__":
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--limit", type=int, default=60)
  ap.add_argument("--analyze", action="store_true")
  a = ap.parse_args()
  analyze() if a.analyze else probe(a.limit)
