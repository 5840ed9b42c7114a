"""The paper's four synthetic features (animal, mammal, Chinese, number) on the embedded model, default settings.

python experiments/paper_features.py [--model=PATH] [--steps=300]
"""

from __future__ import annotations

import argparse
import os

import common
from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax.loading import load_model
from tokenlabel_jax.optimization import LabelConfig

FEATURES = ["animal", "mammal", "chinese", "number"]
REFERENCES = {"animal": ["animal", "creature"], "mammal": ["mammal", "animal"], "chinese": ["Chinese", "中文"],
              "number": ["number", "numeral"]}


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--model", default=None)
  ap.add_argument("--discriminator", default=None)
  ap.add_argument("--steps", type=int, default=LabelConfig().steps)
  ap.add_argument("--out", default=os.path.join(common.HERE, "runs", "paper_features"))
  args = ap.parse_args()
  common.quiet()
  m = load_model(args.model)
  disc = disc_lib.get(args.discriminator or disc_lib.default_for(m.tokenizer, m.cfg))
  feats = [data_lib.load_features(os.path.join(common.DATA, f + ".jsonl"))[0] for f in FEATURES]
  rows = common.label_rows(m, feats, disc, LabelConfig(steps=args.steps), args.out, REFERENCES, "default")
  common.write_table("paper_features", rows,
                     ["feature", "label", "p", "heldout AUC", "F1", "reference", "steps", "wall s/feature",
                      "seed argmax"],
                     f"The paper's four features on {m.cfg.name} ({disc.name} discriminator)",
                     "label: the verified hard label; p: its probability in the best seed's final softmax; "
                     "held-out AUC/F1: the hard label on held-out records (held-out concept words); reference: the "
                     "same figure for the obvious human labels.")


if __name__ == "__main__":
  main()
