"""Loss-term ablation: full objective, no entropy term, no KL term, neither; on the paper's four features.

python experiments/ablation.py [--steps=300]
"""

from __future__ import annotations

import argparse
import os

import common
from paper_features import FEATURES, REFERENCES
from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax.loading import load_model
from tokenlabel_jax.optimization import LabelConfig

SETTINGS = {
    "full (annealed λ)": dict(),
    "full, constant λ (paper)": dict(ent_anneal=False, kl_anneal=False),
    "no entropy": dict(lam_ent=0.0),
    "no KL": dict(lam_kl=0.0),
    "neither": dict(lam_ent=0.0, lam_kl=0.0),
}


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--model", default=None)
  ap.add_argument("--steps", type=int, default=LabelConfig().steps)
  ap.add_argument("--out", default=os.path.join(common.HERE, "runs", "ablation"))
  args = ap.parse_args()
  common.quiet()
  m = load_model(args.model)
  disc = disc_lib.get(disc_lib.default_for(m.tokenizer, m.cfg))
  feats = [data_lib.load_features(os.path.join(common.DATA, f + ".jsonl"))[0] for f in FEATURES]
  rows = []
  for i, (name, kw) in enumerate(SETTINGS.items()):
    rows += common.label_rows(m, feats, disc, LabelConfig(steps=args.steps, **kw),
                              os.path.join(args.out, f"setting{i}"), REFERENCES, name)
  common.write_table("ablation", rows, ["setting", "feature", "label", "p", "heldout AUC", "reference",
                                        "seed argmax"],
                     f"Loss-term ablation on {m.cfg.name} ({disc.name} discriminator)")


if __name__ == "__main__":
  main()
