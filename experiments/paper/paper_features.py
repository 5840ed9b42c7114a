"""The paper's four synthetic features (animal, mammal, Chinese, number) on the embedded model, default settings.

python experiments/paper/paper_features.py [--model=PATH] [--steps=300]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=g-import-not-at-top


def main():
  args, m, disc = common.setup("paper_features", __doc__)
  feats = [common.feature(f) for f in common.PAPER_FEATURES]
  rows = common.label_rows(m, feats, disc, LabelConfig(steps=args.steps), args.out, common.PAPER_REFERENCES,
                           "default")
  common.write_table("paper_features", rows,
                     ["feature", "label", "p", "heldout AUC", "F1", "reference", "steps", "wall s/feature",
                      "seed argmax"],
                     f"The paper's four features on {m.cfg.name} ({disc.name} discriminator)",
                     "label: the verified hard label; p: its probability in the best seed's final softmax; "
                     "held-out AUC/F1: the hard label on held-out records (held-out concept words); reference: the "
                     "same figure for the obvious human labels.")


if __name__ == "__main__":
  main()
