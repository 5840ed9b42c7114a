"""The paper's data-balance finding: mammal collapses to 'animal' when negatives are off-topic.

Imbalanced (10% positives, random negatives), balanced (50%, random negatives), balanced with hard negatives (50%,
negatives drawn from other animals: birds, fish, reptiles, insects, which carry a sub-threshold activation).
python experiments/paper/data_balance.py [--steps=300] [--model=NAME --steps=0]
(with --model, the results are data_balance_<model>.{md,json}; --steps=0 is the exact scan alone, as `label` runs
the namer)
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=g-import-not-at-top

SETTINGS = {
    "imbalanced (10% positive)": dict(positive_fraction=0.1, negatives="random"),
    "balanced": dict(positive_fraction=0.5, negatives="random"),
    "balanced, hard negatives": dict(positive_fraction=0.5, negatives="near_miss"),
}


def main():
  args, m, disc = common.setup("data_balance", __doc__)
  feat = [common.feature("mammal_hardneg")]
  rows = []
  for i, (name, kw) in enumerate(SETTINGS.items()):
    lcfg = LabelConfig(steps=args.steps, threshold=0.5, **kw)
    rows += common.label_rows(m, feat, disc, lcfg, os.path.join(args.out, m.cfg.name, f"setting{i}"),
                              {"mammal_hardneg": ["mammal", "animal"]}, name)
  name = "data_balance" + (f"_{m.cfg.name}" if m.cfg.name != "smollm2-135m-instruct" else "")
  common.write_table(name, rows, ["setting", "label", "p", "heldout AUC", "F1", "reference", "seed argmax"],
                     f"Data balance on the mammal feature, {m.cfg.name} ({disc.name} discriminator)",
                     "Held-out examples are drawn with the same setting as training, so 'hard negatives' is also "
                     "judged on other animals.")


if __name__ == "__main__":
  main()
