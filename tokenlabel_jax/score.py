"""Score labels with a discriminator: `python -m tokenlabel_jax.score --features=F --labels=animal,creature,...`.

Per feature and label: the hard label's held-out AUC, accuracy, F1 and calibrated loss, and its rank among the given
labels (by validation loss); the same figures for the baselines (the top-activating token, a random word), unranked.
With --vocab (single-token labels, namer): the exact top-k of the whole vocabulary by validation AUC. Researchers use
it to check a human-proposed label, and to judge a discriminator.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import labeling
from tokenlabel_jax import runfiles
from tokenlabel_jax import subject_tokens
from tokenlabel_jax.errors import UserError, check_no_arguments, exit_on_user_error, parse_flags
from tokenlabel_jax.loading import MODEL_HELP, load_model
from tokenlabel_jax.optimization import LabelConfig

flags.DEFINE_string("model", None, "Discriminator model: " + MODEL_HELP)
flags.DEFINE_string("features", None, "Activation records: a .jsonl file or a directory.", required=True)
flags.DEFINE_string("subject_tokenizer", None, subject_tokens.FLAG_HELP)
flags.DEFINE_list("labels", [], "Candidate labels to score.")
flags.DEFINE_string("discriminator", None, f"One of {', '.join(disc_lib.PRESETS)}; default: measured per model.")
flags.DEFINE_bool("vocab", False, "Also rank every single-token label of the vocabulary exactly (namer only).")
flags.DEFINE_integer("top_k", 20, "How many vocabulary labels to list with --vocab.")
flags.DEFINE_integer("n_val", 64, "Validation examples (calibration, ranking).")
flags.DEFINE_integer("n_heldout", 128, "Held-out examples (reported figures).")
flags.DEFINE_float("threshold", LabelConfig.threshold, "A token is positive when its activation exceeds this.")
flags.DEFINE_enum("negatives", LabelConfig.negatives, list(data_lib.NEGATIVE_MODES),
                  "How negatives are drawn (near_miss: inactive tokens with 0 < activation <= threshold first).")
flags.DEFINE_string("score_discriminator", None, "Also score the labels with this second discriminator, on the same "
                    "held-out examples (an independent figure), e.g. likelihood.")
flags.DEFINE_string("output", None, "Write the results as JSON here.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
FLAGS = flags.FLAGS


@exit_on_user_error
def main(argv):
  check_no_arguments(argv)
  labels = labeling.label_words(FLAGS.labels)
  logging.set_verbosity(logging.WARNING)
  if not labels and not FLAGS.vocab:
    raise UserError("nothing to score", "pass --labels=word1,word2,... and/or --vocab")
  if FLAGS.vocab and FLAGS.top_k < 1:
    raise UserError(f"--top_k={FLAGS.top_k} lists no vocabulary label", "pass --top_k=1 or more")
  if FLAGS.output:  # before the model loads and the scoring runs, not after
    runfiles.check_writable(os.path.dirname(os.path.abspath(FLAGS.output)), f"--output={FLAGS.output}")
  m = load_model(FLAGS.model)
  disc = disc_lib.get(FLAGS.discriminator or disc_lib.default_for(m.tokenizer, m.cfg))
  scorer = disc_lib.get(FLAGS.score_discriminator) if FLAGS.score_discriminator else None
  lcfg = LabelConfig(n_train=0, n_val=FLAGS.n_val, n_heldout=FLAGS.n_heldout, seed=FLAGS.seed,
                     threshold=FLAGS.threshold, negatives=FLAGS.negatives)
  results = []
  for feature in data_lib.load_features(FLAGS.features, FLAGS.subject_tokenizer):
    for d in [disc] + ([scorer] if scorer else []):
      r = labeling.score_feature(m, feature, d, labels, lcfg, FLAGS.vocab and d is disc, FLAGS.top_k)
      results.append(r)
      print(f"\n{feature.name} ({d.name}{'' if d is disc else ', independent scorer'}):")
      for l, row in sorted(r["labels"].items(), key=lambda kv: kv[1]["rank"]):
        print(f"  {row['rank']:5.1f}  {l!r:20s} held-out AUC {row['auc']:.3f}  acc {row['accuracy']:.3f}  "
              f"val loss {row['val_loss']:.3f}")
      for name, row in r["baselines"].items():  # what the labels are to be read against
        print(f"      {row['label']!r:20s} held-out AUC {row['auc']:.3f}  acc {row['accuracy']:.3f}  "
              f"val loss {row['val_loss']:.3f}  ({name.replace('_', ' ')}, a baseline)")
      if "vocab_top" in r:
        print("  vocabulary: " + ", ".join(f"{t!r} {a:.3f}" for t, a in r["vocab_top"]))
  if FLAGS.output:  # a full disk at the end still leaves the figures printed above
    runfiles.write_json(FLAGS.output, results, indent=1,
                        fix="free space or choose another path; the figures are printed above")
    print(f"wrote {FLAGS.output}", file=sys.stderr)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
