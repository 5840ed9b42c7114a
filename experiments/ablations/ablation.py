"""Loss-term ablation: full objective, no entropy term, no KL term, neither; on the paper's four features.

python experiments/ablations/ablation.py [--steps=300]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=g-import-not-at-top

SETTINGS = {
    "full (annealed λ)": dict(),
    "full, constant λ (paper)": dict(ent_anneal=False, kl_anneal=False),
    "no entropy": dict(lam_ent=0.0),
    "no KL": dict(lam_kl=0.0),
    "neither": dict(lam_ent=0.0, lam_kl=0.0),
}


def main():
  args, m, disc = common.setup("ablation", __doc__)
  feats = [common.feature(f) for f in common.PAPER_FEATURES]
  rows = []
  for i, (name, kw) in enumerate(SETTINGS.items()):
    rows += common.label_rows(m, feats, disc, LabelConfig(steps=args.steps, **kw),
                              os.path.join(args.out, f"setting{i}"), common.PAPER_REFERENCES, name)
  common.write_table("ablation", rows, ["setting", "feature", "label", "p", "heldout AUC", "reference",
                                        "seed argmax"],
                     f"Loss-term ablation on {m.cfg.name} ({disc.name} discriminator)")


if __name__ == "__main__":
  main()
