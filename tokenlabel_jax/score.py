"""Score labels with a discriminator: `python -m tokenlabel_jax.score --features=F --labels=animal,creature,...`.

Per feature and label: the hard label's held-out AUC, accuracy, F1 and calibrated loss, and its rank among the given
labels (by validation loss). With --vocab (single-token labels, namer): the exact top-k of the whole vocabulary by
validation AUC. Researchers use it to check a human-proposed label, and to judge a discriminator.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
from absl import app, flags, logging

from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import evaluation
from tokenlabel_jax import labeling
from tokenlabel_jax.errors import UserError, exit_on_user_error, parse_flags
from tokenlabel_jax.loading import LoadedModel, load_model
from tokenlabel_jax.optimization import LabelConfig

flags.DEFINE_string("model", None, "Model path or 'smollm2-135m-instruct' (default).")
flags.DEFINE_string("features", None, "Activation records: a .jsonl file or a directory.", required=True)
flags.DEFINE_list("labels", [], "Candidate labels to score.")
flags.DEFINE_string("discriminator", None, f"One of {', '.join(disc_lib.PRESETS)}; default: measured per model.")
flags.DEFINE_bool("vocab", False, "Also rank every single-token label of the vocabulary exactly (namer only).")
flags.DEFINE_integer("top_k", 20, "How many vocabulary labels to list with --vocab.")
flags.DEFINE_integer("n_val", 64, "Validation examples (calibration, ranking).")
flags.DEFINE_integer("n_heldout", 128, "Held-out examples (reported figures).")
flags.DEFINE_string("output", None, "Write the results as JSON here.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
FLAGS = flags.FLAGS


def score_feature(m: LoadedModel, feature: data_lib.Feature, disc: disc_lib.DiscriminatorConfig, labels: list[str],
                  lcfg: LabelConfig, vocab: bool, top_k: int) -> dict:
  splits = labeling.build_splits(m, feature, disc, lcfg)
  out: dict = {"feature": feature.name, "discriminator": disc.name, "labels": {}}
  if labels:
    ids = [disc_lib.encode_label(m.tokenizer, l) for l in labels]
    rows = labeling.evaluate_labels(m, disc, ids, splits["val"], splits["heldout"])
    losses = [r["val_loss"] for r in rows]
    for l, t, r in zip(labels, ids, rows):
      out["labels"][l] = {**r, "tokens": [m.tokenizer.token_str(i) for i in t],
                          "rank": evaluation.rank_of(r["val_loss"], losses)}
  if vocab:
    if disc.kind != "namer":
      raise UserError(f"--vocab needs the namer discriminator (got {disc.name})",
                      "pass --discriminator=namer, or score chosen labels with --labels")
    mask = disc_lib.word_like_mask(m.tokenizer, m.cfg.vocab_size)
    auc = evaluation.vocab_auc(splits["val"].prep.logq_BxV, splits["val"].positive_B, mask)
    order = np.argsort(-np.nan_to_num(auc, nan=-1.0))[:top_k]
    out["vocab_top"] = [[m.tokenizer.token_str(int(t)), float(auc[t])] for t in order]
  return out


@exit_on_user_error
def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  if not FLAGS.labels and not FLAGS.vocab:
    raise UserError("nothing to score", "pass --labels=word1,word2,... and/or --vocab")
  m = load_model(FLAGS.model)
  disc = disc_lib.get(FLAGS.discriminator or disc_lib.default_for(m.tokenizer, m.cfg))
  lcfg = LabelConfig(n_train=0, n_val=FLAGS.n_val, n_heldout=FLAGS.n_heldout, seed=FLAGS.seed)
  results = []
  for feature in data_lib.load_features(FLAGS.features):
    r = score_feature(m, feature, disc, FLAGS.labels, lcfg, FLAGS.vocab, FLAGS.top_k)
    results.append(r)
    print(f"\n{feature.name} ({disc.name}):")
    for l, row in sorted(r["labels"].items(), key=lambda kv: kv[1]["rank"]):
      print(f"  {row['rank']:5.1f}  {l!r:20s} held-out AUC {row['auc']:.3f}  acc {row['accuracy']:.3f}  "
            f"val loss {row['val_loss']:.3f}")
    if "vocab_top" in r:
      print("  vocabulary: " + ", ".join(f"{t!r} {a:.3f}" for t, a in r["vocab_top"]))
  if FLAGS.output:
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "w") as f:
      json.dump(results, f, indent=1, ensure_ascii=False)
    print(f"wrote {FLAGS.output}", file=sys.stderr)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
