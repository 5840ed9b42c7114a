"""The LLM-explainer baseline: `python -m tokenlabel_jax.explain --features=FILE_OR_DIR --output_dir=DIR [--model=...]`.

The model reads each feature's top-activating training contexts and writes a label (tokenlabel_jax.explainer); the
label is then scored on the held-out examples exactly as `label` scores its own (the discriminator's held-out AUC,
and with --score_discriminator an independent one), and written in the same layout: DIR/<feature>/result.json and
examples.json, DIR/summary.json, DIR/index.html, DIR/explanations.jsonl. A killed run resumes: features already
explained with the same settings are kept.
"""

from __future__ import annotations

import dataclasses
import sys

from absl import app, flags, logging

from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import explainer
from tokenlabel_jax import explaining
from tokenlabel_jax import formats
from tokenlabel_jax import labeling
from tokenlabel_jax import report
from tokenlabel_jax import runfiles
from tokenlabel_jax import runlock
from tokenlabel_jax import subject_tokens
from tokenlabel_jax.errors import UserError, check_no_arguments, check_settings, exit_on_user_error, parse_flags
from tokenlabel_jax.loading import MODEL_HELP, load_model
from tokenlabel_jax.optimization import LabelConfig

_E = explainer.ExplainConfig()
flags.DEFINE_string("model", None, "Explainer and discriminator model: " + MODEL_HELP)
flags.DEFINE_string("features", None, "Activation data, as `label` reads it.", required=True)
flags.DEFINE_string("subject_tokenizer", None, subject_tokens.FLAG_HELP)
flags.DEFINE_string("output_dir", None, "Where results go.", required=True)
flags.DEFINE_list("only", [], "Explain only these feature names.")
flags.DEFINE_string("discriminator", None, f"Scores the label: one of {', '.join(disc_lib.PRESETS)}; default: as "
                    "`label` would use.")
flags.DEFINE_string("score_discriminator", None, "A second, independent discriminator scoring the label.")
flags.DEFINE_list("reference_labels", [], "Human labels scored beside the explanation.")
flags.DEFINE_float("threshold", 0.0, "A token is active (marked, and positive) when its activation exceeds this.")
flags.DEFINE_integer("samples", _E.samples, "Answers per feature: the first greedy, the others sampled.")
flags.DEFINE_integer("n_top", _E.n_top, "Strongest training records shown.")
flags.DEFINE_integer("n_quantile", _E.n_quantile, "Records shown from lower activation quantiles.")
flags.DEFINE_integer("features_per_batch", 4, "Features whose prompts decode together.")
flags.DEFINE_bool("resume", True, "Keep the features --output_dir already holds with these settings.")
FLAGS = flags.FLAGS


@exit_on_user_error
def main(argv):
  check_no_arguments(argv)
  refs = labeling.label_words(FLAGS.reference_labels)
  check_settings(FLAGS, [("features_per_batch", FLAGS.features_per_batch >= 1, "at least 1")])
  logging.set_verbosity(logging.WARNING)
  runfiles.check_writable(FLAGS.output_dir, f"--output_dir={FLAGS.output_dir}")
  runfiles.check_apart(FLAGS.features, FLAGS.output_dir)
  runlock.acquire(FLAGS.output_dir, 0.0)
  for name in (FLAGS.discriminator, FLAGS.score_discriminator):
    if name:
      disc_lib.get(name)  # fail before the model loads
  features = data_lib.load_features(FLAGS.features, FLAGS.subject_tokenizer)
  if FLAGS.only:
    features = [f for f in features if f.name in FLAGS.only]
    if not features:
      raise UserError(f"no feature named {FLAGS.only} in {FLAGS.features}", "check --only")
  m = load_model(FLAGS.model)
  if not m.tokenizer.has_chat_template:
    print("warning: the model has no chat template; the explainer prompt ends in 'Label:'", file=sys.stderr)
  disc = disc_lib.get(FLAGS.discriminator or disc_lib.default_for(m.tokenizer, m.cfg))
  scorer = disc_lib.get(FLAGS.score_discriminator) if FLAGS.score_discriminator else None
  ecfg = dataclasses.replace(_E, samples=FLAGS.samples, n_top=FLAGS.n_top, n_quantile=FLAGS.n_quantile)
  results = explaining.explain_features(m, features, disc, LabelConfig(threshold=FLAGS.threshold, steps=0), ecfg,
                                        FLAGS.output_dir, refs, scorer, FLAGS.resume, FLAGS.features_per_batch,
                                        log=lambda s: print(s, file=sys.stderr, flush=True))
  if results:
    print(f"report: {report.write_report(FLAGS.output_dir)}", file=sys.stderr)
    formats.write_explanations(FLAGS.output_dir)
  runfiles.check_all_done([f.name for f in features], results, FLAGS.output_dir)  # each was named as it failed


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
