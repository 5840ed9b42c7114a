"""Label features: `python -m tokenlabel_jax.label --features=FILE_OR_DIR --output_dir=DIR [--model=...]`.

Writes DIR/<feature>/result.json, examples.json, trajectory.png and checkpoints, DIR/summary.json and the HTML report
DIR/index.html (tokenlabel_jax.report). A killed run resumes.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import jax
from absl import app, flags, logging

from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import labeling
from tokenlabel_jax import run
from tokenlabel_jax import runfiles
from tokenlabel_jax import runlock
from tokenlabel_jax import selection
from tokenlabel_jax import sharding
from tokenlabel_jax import subject_tokens
from tokenlabel_jax import sweep
from tokenlabel_jax.errors import UserError, check_no_arguments, check_settings, exit_on_user_error, parse_flags
from tokenlabel_jax.loading import MODEL_HELP, load_model
from tokenlabel_jax.optimization import LabelConfig

_D = LabelConfig()
flags.DEFINE_string("model", None, "Discriminator model: " + MODEL_HELP)
flags.DEFINE_string("features", None, "Activation data: .jsonl records, a Neuronpedia / SAEDashboard / OpenAI "
                    "neuron-explainer JSON, a delphi latent cache, or a directory of them.", required=True)
flags.DEFINE_string("subject_tokenizer", None, subject_tokens.FLAG_HELP)
flags.DEFINE_string("output_dir", None, "Where results, plots and checkpoints go.", required=True)
flags.DEFINE_list("only", [], "Label only these feature names.")
flags.DEFINE_string("discriminator", None, f"One of {', '.join(disc_lib.PRESETS)}; default: measured per model.")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Model dtype (float32 is faster on CPUs).")
flags.DEFINE_bool("remat", False, "Recompute layer activations in the backward pass: about 1/3 more compute, far less "
                  "step memory (larger --batch_size x --features_per_batch on a GPU/TPU; see dry_run).")
flags.DEFINE_list("reference_labels", [], "Human labels to score on the same held-out data, e.g. animal,creature.")
flags.DEFINE_bool("resume", True, "Keep the features --output_dir already holds with these settings; resume the rest "
                  "from their checkpoints.")
flags.DEFINE_float("lock_wait_s", 0.0, "When another run holds --output_dir, wait this long for it, then refuse.")
flags.DEFINE_integer("steps", None, f"Optimization steps (default {_D.steps}; 0 with the namer and one-token labels, "
                     "whose exact vocabulary scan finds every label the gradient run could: --steps=N runs it anyway).")
flags.DEFINE_integer("seeds", _D.seeds, "Random restarts optimized together (vmapped).")
flags.DEFINE_integer("batch_size", _D.batch_size, "Examples per step.")
flags.DEFINE_float("learning_rate", _D.learning_rate, "AdamW learning rate.")
flags.DEFINE_float("lam_ent", _D.lam_ent, "Entropy weight λ_ent.")
flags.DEFINE_float("lam_kl", _D.lam_kl, "KL weight λ_kl.")
flags.DEFINE_bool("ent_anneal", _D.ent_anneal, "Ramp λ_ent up from 0 over the run.")
flags.DEFINE_bool("kl_anneal", _D.kl_anneal, "Ramp λ_kl up from 0 over the run.")
flags.DEFINE_enum("forcing", _D.forcing, ["none", "straight_through", "gumbel"], "How the label enters the model.")
flags.DEFINE_enum("vocab_filter", _D.vocab_filter, ["words", "all"], "Allowed label tokens.")
flags.DEFINE_integer("n_train", _D.n_train, "Training examples per feature.")
flags.DEFINE_integer("n_val", _D.n_val, "Validation examples per feature (verification; from training records).")
flags.DEFINE_integer("n_heldout", _D.n_heldout, "Held-out examples per feature.")
flags.DEFINE_enum("negatives", _D.negatives, list(data_lib.NEGATIVE_MODES), "How negatives are drawn.")
flags.DEFINE_float("threshold", _D.threshold, "A token is positive when its activation exceeds this.")
flags.DEFINE_enum("target_mode", _D.target_mode, ["binary", "continuous"],
                  "Loss targets: binary, or activation / (a high quantile of positive activations). Which tokens count "
                  "as positive (sampling, checks, metrics) is --threshold either way.")
flags.DEFINE_float("target_scale_quantile", _D.target_scale_quantile,
                   "Continuous mode: the quantile of positive activations that maps to target 1.")
flags.DEFINE_float("positive_fraction", _D.positive_fraction, "Share of positive examples drawn (0.5: balanced).")
flags.DEFINE_integer("seed", _D.seed, "Random seed (same seed, same label).")
_S = selection.SelectConfig()
flags.DEFINE_enum("select_rule", None, list(selection.RULES), "How the label is chosen among the exactly "
                  "scored candidates (default: the model's measured rule, ask for instruct models of 1B parameters "
                  "and more, else coverage): coverage (namer: of the best 32 by validation loss, the one that fits "
                  "all the positives best: log-rank gap + typicality + set namer), set_namer (namer: of the best 32, "
                  "the likeliest kind of sets of four positive words), ask (namer, instruct models: of the best 32 "
                  "within --select_ask_margin, the answer the model likes best, asked in its chat format to name "
                  "12 positive words) or typicality (the most typical of the best 4 within --select_margin).")
flags.DEFINE_float("select_margin", _S.margin,
                   "Typicality rule: the best few candidates within this validation loss of "
                   "the best compete on typicality (how much the label raises the positive words' probability after "
                   "'Examples of<label>:'). 0, with either rule: the lowest validation loss.")
flags.DEFINE_integer("extend_top", _S.extend_top, "Namer: best first tokens extended to two-token labels (0: none).")
flags.DEFINE_enum("propose_with", _S.propose_with, ["none", "explainer"], "Namer: 'explainer' adds the LLM "
                  "explainer's answers (tokenlabel_jax.explain, on the same model; labels of any length) to the "
                  "candidates, scored and chosen among like every other.")
flags.DEFINE_integer("proposals", _S.proposals, "With --propose_with=explainer: answers per feature (the first "
                     "greedy, the others sampled).")
flags.DEFINE_float("select_ask_margin", _S.ask_margin, "Ask rule: only candidates within this validation loss of "
                   "the best compete (chosen on the naming benchmark's tuning half).")
flags.DEFINE_float("select_set_margin", None, "Set namer rule: only candidates within this validation loss of the "
                   "best compete (default: all of them; with --propose_with=explainer, the combination's measured "
                   "margin, selection.COMBINATION).")
flags.DEFINE_bool("select_answers_first", None, "Set namer rule: the explainer's earliest answer within the margin "
                  "wins before the set namer decides (default: only with --propose_with=explainer).")
flags.DEFINE_bool("select_answers_above_chance", None, "Set namer rule: an explainer answer counts only where its "
                  "validation AUC is above chance (default: only with --propose_with=explainer).")
flags.DEFINE_string("score_discriminator", None, "A second discriminator that scores the chosen label on the same "
                    "held-out examples (independent figures, as it was not optimized against), e.g. likelihood.")
flags.DEFINE_integer("features_per_batch", 4, "Features optimized together in one vmapped step (split over "
                     "the devices; a count that does not divide them is padded).")
flags.DEFINE_float("prompt_memo_gb", None, "Memory for remembered prompt passes, reused across features (the namer's "
                   "'<word> is a kind of' rows; 4 bytes per vocabulary entry per word with one-token labels, 0.2 MB "
                   "for the 135M model, 0.6 MB for Qwen2.5): labeling thousands of SAE latents runs each distinct "
                   "word once when it holds them all (e.g. 6 for 25k words with the 135M model). Default: room for "
                   "5000 words, at least 1. 0: off.")
flags.DEFINE_bool("plots", True, "Write each feature's trajectory.png (about 0.15 s per feature; --noplots for "
                  "thousands of SAE latents, whose report then shows no trajectory).")
flags.DEFINE_string("compile_cache", None,
                    "A folder that keeps compiled XLA programs (e.g. ~/.cache/tokenlabel_jax/xla): "
                    "a later run of the same shapes skips compiling them (about 7 s of a 26-feature namer run on 2 "
                    "cores). Off by default: an entry left half-written by a killed run is recompiled with a warning "
                    "on every later run until the folder is deleted.")
flags.DEFINE_bool("warm_prompts", True, "Namer, several batches of features: run every distinct prompt of the run "
                  "once, up front, into the prefix memo (as far as --prompt_memo_gb holds them).")
flags.DEFINE_integer("model_parallel", 1, "Devices per model replica (tensor parallel); the rest split features.")
flags.DEFINE_string("coordinator_address", None, "Multi-host jobs: jax.distributed coordinator host:port (with "
                    "--num_processes and --process_id, on every process; process 0 writes the results).")
flags.DEFINE_integer("num_processes", None, "Multi-host jobs: number of processes.")
flags.DEFINE_integer("process_id", None, "Multi-host jobs: this process's index, 0..num_processes-1.")
flags.DEFINE_list("lambda_sweep", [], "Instead of labeling: the λ trade-off per feature, one run for all these values "
                  "(λ_ent = λ_kl = each; e.g. 0,0.1,0.2,0.5,1): each λ's own label, its held-out AUC and "
                  "naturalness in DIR/<feature>/lambda_sweep.json and .png. Runs the gradient (--steps, 300 by "
                  "default).")
flags.DEFINE_integer("log_every", _D.log_every, "Progress line every N steps.")
flags.DEFINE_integer("checkpoint_every", _D.checkpoint_every, "Checkpoint every N steps.")
FLAGS = flags.FLAGS


@exit_on_user_error
def main(argv):
  check_no_arguments(argv)
  refs = labeling.label_words(FLAGS.reference_labels)
  check_settings(FLAGS, [("features_per_batch", FLAGS.features_per_batch >= 1, "at least 1")])
  logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint at INFO
  if FLAGS.compile_cache:  # about 90 programs for a namer run: ~10 s of compiling on 2 cores, paid once
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(FLAGS.compile_cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
  lcfg = LabelConfig(**{f.name: getattr(FLAGS, f.name) for f in dataclasses.fields(LabelConfig)
                        if f.name in FLAGS and getattr(FLAGS, f.name) is not None})
  sharding.init_distributed(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)  # before any device
  writer = jax.process_index() == 0  # every process computes every result; one writes and reports them
  runfiles.check_writable(FLAGS.output_dir, f"--output_dir={FLAGS.output_dir}")
  runfiles.check_apart(FLAGS.features, FLAGS.output_dir)
  if writer:  # the processes of one multi-host job share the directory: the writer holds its lock
    runlock.acquire(FLAGS.output_dir, FLAGS.lock_wait_s)  # held until the process ends
  sweep.parse_values(FLAGS.lambda_sweep)  # fail before the model loads
  for name in (FLAGS.discriminator, FLAGS.score_discriminator):
    if name:
      disc_lib.get(name)  # fail before the model loads
  scfg = dataclasses.replace(selection.SelectConfig(), rule=FLAGS.select_rule or "", margin=FLAGS.select_margin,
                             extend_top=FLAGS.extend_top, propose_with=FLAGS.propose_with, proposals=FLAGS.proposals,
                             ask_margin=FLAGS.select_ask_margin, set_margin=FLAGS.select_set_margin,
                             answers_first=FLAGS.select_answers_first,
                             answers_above_chance=FLAGS.select_answers_above_chance)
  disc_lib.MEMO.max_bytes = (None if FLAGS.prompt_memo_gb is None
                             else int(max(0.0, FLAGS.prompt_memo_gb) * 2**30))
  scorer = disc_lib.get(FLAGS.score_discriminator) if FLAGS.score_discriminator else None
  features = data_lib.load_features(FLAGS.features, FLAGS.subject_tokenizer)
  if FLAGS.only:
    features = [f for f in features if f.name in FLAGS.only]
    if not features:
      raise UserError(f"no feature named {FLAGS.only} in {FLAGS.features}", "check --only")
  mesh = sharding.make_mesh(FLAGS.model_parallel)
  m = load_model(FLAGS.model, FLAGS.dtype)
  m = m._replace(params=sharding.place_params(mesh, m.params), cfg=dataclasses.replace(m.cfg, remat=FLAGS.remat))
  disc = disc_lib.get(FLAGS.discriminator or disc_lib.default_for(m.tokenizer, m.cfg))
  scfg = selection.for_model(scfg, m.cfg, m.tokenizer.has_chat_template)
  if FLAGS.lambda_sweep:
    sweep.run_and_write(m, features, disc, dataclasses.replace(lcfg, steps=FLAGS.steps or _D.steps),
                        FLAGS.lambda_sweep, FLAGS.output_dir, sharding.FeaturePlacer(mesh), writer)
    return
  lcfg = dataclasses.replace(lcfg, steps=labeling.default_steps(disc, lcfg, FLAGS.steps))
  if FLAGS.steps is None and lcfg.steps == 0 and writer:
    ext = f", then two-token extensions of its best {scfg.extend_top}" if scfg.extend_top else ""
    print(f"{disc.name} discriminator, one-token labels: the exact vocabulary scan{ext}, no gradient run (--steps=N "
          "runs one)", file=sys.stderr)
  run.label_run(m, features, disc, lcfg, FLAGS.output_dir, refs, scfg=scfg, scorer=scorer,
                per_batch=FLAGS.features_per_batch, resume=FLAGS.resume, place=sharding.FeaturePlacer(mesh),
                warm=FLAGS.warm_prompts, plots=FLAGS.plots, writer=writer)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
