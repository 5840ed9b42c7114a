"""Probe for the naming rule: per category, statistics of every single-token label (and of two-token extensions of
the best first tokens) under the namer, saved so that selection rules can be compared offline.

  python experiments/naming/probes/naming_probe.py --split tune [--limit N]

Writes experiments/runs/naming_probe/<split>.json: per category, the top candidates by calibrated validation loss
with val/train/held-out figures and the positives' mean log-probability at the slot ("naturalness"), and whether each
names the category (naming.names_category). Only the tuning half is ever used to choose a rule.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import data as data_lib, discriminators as disc_lib, labeling, naming
from tokenlabel_jax import selection
from tokenlabel_jax.optimization import LabelConfig


def main():
  args, m, disc = common.setup("naming_probe", __doc__, **{
      "--split": dict(default="tune"), "--limit": dict(type=int, default=0),
      "--data": dict(default=os.path.join(common.DATA, "benchmark"))})
  spec = json.load(open(os.path.join(common.HERE, "naming", "categories.json")))["categories"]
  cats = [c for c in spec if c["split"] == args.split]
  if args.limit:
    cats = cats[:args.limit]
  lcfg = LabelConfig()
  mask = disc_lib.word_like_mask(m.tokenizer, m.cfg.vocab_size)
  out, t0 = [], time.time()
  for i, c in enumerate(cats):
    feature = data_lib.load_features(os.path.join(args.data, c["name"] + ".jsonl"))[0]
    sp = labeling.build_splits(m, feature, disc, lcfg)
    pool = selection.gather(m, disc, sp["val"], mask, ())
    selection.score(m, disc, pool, sp["val"], sp["heldout"])
    rows = sorted(({"label": cand.text, "ids": cand.ids, "source": cand.source,
                    "names": naming.names_category(cand.text, c["names"]),
                    **{k: float(v) for k, v in cand.stats.items()}} for cand in pool), key=lambda r: r["val_loss"])
    out.append({"name": c["name"], "synset": c["synset"], "names": c["names"], "candidates": rows,
                "name_ids": [disc_lib.encode_label(m.tokenizer, n) for n in c["names"]]})
    print(f"{i + 1}/{len(cats)} {c['name']}: best val loss {rows[0]['label']!r}  ({time.time() - t0:.0f}s)",
          flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"{args.split}.json"), "w") as f:  # rewritten as it goes: partial results
      json.dump(out, f, ensure_ascii=False)


if __name__ == "__main__":
  main()
