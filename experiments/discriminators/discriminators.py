"""Choosing the embedded model's default discriminator by measurement (the discriminator issue).

Part 1 (scoring): for each WordNet concept of concepts.json (not the paper's four) and each discriminator, the
held-out AUC of the concept word as a hard label, and whether the concept word or one of its inflections/synonyms is
among the top 3 of the ~40 candidate labels (ranked by calibrated validation loss).
Part 2 (optimization, --optimize): the end-to-end optimizer from random v with the default discriminator on animal and
further concepts, and the likelihood ratio (label as input) on animal with the gap-closing settings.
python experiments/discriminators/discriminators.py [--discriminators=namer,likelihood,...] [--optimize]
"""

from __future__ import annotations

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import discriminators as disc_lib  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import labeling  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import splits as splits_lib  # pylint: disable=g-import-not-at-top
from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=g-import-not-at-top


def score_concepts(m, disc, concepts, candidates, n_val, n_heldout):
  rows = []
  lcfg = LabelConfig(n_train=0, n_val=n_val, n_heldout=n_heldout)
  for c in concepts:
    feature = common.feature(os.path.join("concepts", c["name"]))
    own = [c["concept_word"]] + c.get("synonyms", [])
    labels = list(dict.fromkeys(candidates + own))
    splits = labeling.build_splits(m, feature, disc, lcfg)
    ids = [disc_lib.encode_label(m.tokenizer, l) for l in labels]
    res = splits_lib.evaluate_labels(m, disc, ids, splits["val"], splits["heldout"])
    order = sorted(range(len(labels)), key=lambda i: res[i]["val_loss"])
    rank = {labels[i]: r + 1 for r, i in enumerate(order)}
    best_own = min(own, key=lambda l: rank[l])
    concept = res[labels.index(c["concept_word"])]
    rows.append({"discriminator": disc.name, "concept": c["name"], "concept word AUC": concept["auc"],
                 "best own label": best_own, "its rank": rank[best_own],
                 "top 3": ", ".join(labels[i] for i in order[:3]),
                 "in top 3": rank[best_own] <= 3, "n labels": len(labels)})
    print(rows[-1], flush=True)
  return rows


def write_discriminator_tables(name, rows, n_candidates, model_name, command=None):
  """experiments/results/discriminator_<name>.{md,json} (per concept) and the summary row."""
  aucs = [x["concept word AUC"] for x in rows]
  summary = {"discriminator": name, "concepts": len(rows), "median concept-word AUC": statistics.median(aucs),
             "concepts with AUC >= 0.9": sum(a >= 0.9 for a in aucs),
             "own label in top 3": f"{sum(x['in top 3'] for x in rows)}/{len(rows)}"}
  columns = [c for c in rows[0] if c != "discriminator"]
  common.write_table(f"discriminator_{name}", rows, columns,
                     f"Discriminator '{name}' on {model_name}: {len(rows)} WordNet concepts, {n_candidates}+ "
                     "candidate labels each",
                     "**Summary: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                               for k, v in summary.items()) + "**\n\n"
                     "Concepts and candidate labels: experiments/concepts.json (the paper's four features are left "
                     "out). Concept word AUC: the concept word as a hard label on held-out records. Rank: by "
                     "calibrated validation loss among the candidates plus the concept's own word and synonyms; "
                     "'in top 3' counts the concept word or one of its synonyms/inflections.",
                     command, summary)


def main():
  args, m, default = common.setup(
      "discriminators", __doc__,
      **{"--discriminators": dict(default="namer,namer_context,likelihood,likelihood_context,judge"),
         "--n_val": dict(type=int, default=48), "--n_heldout": dict(type=int, default=96),
         "--optimize": dict(action="store_true"), "--skip_scoring": dict(action="store_true"),
         "--concepts": dict(type=int, default=0, help="only the first N concepts (0: all)")})
  spec = json.load(open(os.path.join(common.HERE, "concepts.json")))
  concepts, candidates = spec["concepts"], spec["candidate_labels"]
  if args.concepts:
    concepts = concepts[:args.concepts]
  if not args.skip_scoring:
    for name in args.discriminators.split(","):
      rows = score_concepts(m, disc_lib.get(name), concepts, candidates, args.n_val, args.n_heldout)
      write_discriminator_tables(name, rows, len(candidates), m.cfg.name)
  if args.optimize:
    names = ["color", "body_part", "fruit", "country"]
    feats = [common.feature("animal")] + [common.feature(os.path.join("concepts", n)) for n in names]
    own = {c["name"]: [c["concept_word"]] for c in concepts}
    own["animal"] = ["animal"]
    out = args.out
    rows = common.label_rows(m, feats, default, LabelConfig(steps=args.steps), os.path.join(out, default.name), own,
                             f"{default.name}, from random v")
    lik = disc_lib.get("likelihood")
    for setting, kw in {"likelihood, soft (no forcing)": dict(),
                        "likelihood, straight-through": dict(forcing="straight_through")}.items():
      # The label runs through the model here: 2 seeds x 8 examples per step keep it to ~0.5 s a step on 2 cores.
      rows += common.label_rows(m, feats[:1], lik, LabelConfig(steps=args.steps, seeds=2, batch_size=8, **kw),
                                os.path.join(out, setting.replace(" ", "_").replace(",", "")), own, setting)
    common.write_table("discriminators_optimize", rows, ["setting", "feature", "label", "p", "heldout AUC",
                                                         "reference", "wall s/feature", "seed argmax"],
                       f"End-to-end optimization on {m.cfg.name}")


if __name__ == "__main__":
  main()
