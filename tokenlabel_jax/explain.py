"""The LLM-explainer baseline: `python -m tokenlabel_jax.explain --features=FILE_OR_DIR --output_dir=DIR [--model=...]`.

The model reads each feature's top-activating training contexts and writes a label (tokenlabel_jax.explainer); the
label is then scored on the held-out examples exactly as `label` scores its own (the discriminator's held-out AUC,
and with --score_discriminator an independent one), and written in the same layout: DIR/<feature>/result.json and
examples.json, DIR/summary.json, DIR/index.html, DIR/explanations.jsonl. A killed run resumes: features already
explained with the same settings are kept.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

from absl import app, flags, logging

from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import explainer
from tokenlabel_jax import formats
from tokenlabel_jax import labeling
from tokenlabel_jax import report
from tokenlabel_jax import runfiles
from tokenlabel_jax import runlock
from tokenlabel_jax import selection
from tokenlabel_jax.errors import UserError, exit_on_user_error, parse_flags
from tokenlabel_jax.loading import MODEL_HELP, load_model
from tokenlabel_jax.optimization import LabelConfig
from tokenlabel_jax.splits import evaluate_labels

_E = explainer.ExplainConfig()
flags.DEFINE_string("model", None, "Explainer and discriminator model: " + MODEL_HELP)
flags.DEFINE_string("features", None, "Activation data, as `label` reads it.", required=True)
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


def score_explanation(m, feature, disc, lcfg: LabelConfig, explained: dict, references, scorer) -> tuple[dict, dict]:
  """The explanation's result.json, in `label`'s layout, and its examples.json."""
  label = explained["label"]
  ids = disc_lib.encode_label(m.tokenizer, label) if label else []
  refs = [disc_lib.encode_label(m.tokenizer, r) for r in references]
  keep_cache = labeling.needs_cache(m, disc, lcfg, selection.SelectConfig(extend_top=0),
                                    ([label] if label else []) + list(references))
  sp = labeling.build_splits(m, feature, disc, dataclasses.replace(lcfg, n_train=0), keep_cache)
  rows = evaluate_labels(m, disc, ([ids] if ids else []) + refs, sp["val"], sp["heldout"])
  own, ref_rows = (rows[0], rows[1:]) if ids else (None, rows)
  status, lower = explained["status"], float("nan")
  if own is not None:
    n_pos = int(sp["heldout"].positive_B.sum())
    lower = selection.auc_lower_bound(own["auc"], n_pos, len(sp["heldout"].positive_B) - n_pos)
    status = "ok" if lower > selection.SelectConfig().min_auc_lower else "not above chance"
  result = {
      "feature": feature.name, "label": label if status == "ok" else None, "best_candidate": label,
      "label_status": status, "token_ids": ids, "source": "explainer", "search": "LLM explainer",
      "probability": None,
      "heldout": {k: own[k] for k in ("auc", "accuracy", "f1")} if own else {"auc": None, "accuracy": None,
                                                                             "f1": None},
      "heldout_auc_lower95": lower,
      "validation": {k: own[k] for k in ("val_loss", "val_auc")} if own else {},
      "references": {r: {k: row[k] for k in ("auc", "accuracy", "f1", "val_loss")}
                     for r, row in zip(references, ref_rows)},
      "explainer": {k: explained[k] for k in ("status", "proposals", "answers", "excerpts", "prompt_tokens")},
      "discriminator": disc.name, "model": m.cfg.name, "n_examples": {k: len(v.examples) for k, v in sp.items()},
      "config": {"explain": dataclasses.asdict(_settings()), "threshold": lcfg.threshold, "seed": lcfg.seed},
  }
  if scorer is not None and ids:
    result["scorer"] = labeling.independent_scores(m, feature, scorer, lcfg, [ids] + refs, ["label", *references])
  return result, labeling.example_dump(m, feature, disc, sp, ids or None)


def _settings() -> explainer.ExplainConfig:
  return dataclasses.replace(_E, samples=FLAGS.samples, n_top=FLAGS.n_top, n_quantile=FLAGS.n_quantile)


def _finished(output_dir: str, name: str, want: dict) -> dict | None:
  try:
    with open(os.path.join(output_dir, name, "result.json")) as f:
      r = json.load(f)
  except (OSError, ValueError):
    return None
  return r if isinstance(r, dict) and all(r.get(k) == v for k, v in want.items()) else None


@exit_on_user_error
def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {argv[1:]}", "pass options as --flag=value")
  logging.set_verbosity(logging.WARNING)
  try:
    os.makedirs(FLAGS.output_dir, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot write to --output_dir={FLAGS.output_dir} ({e.strerror})", "choose a writable directory"
                    ) from None
  runlock.acquire(FLAGS.output_dir, 0.0)
  for name in (FLAGS.discriminator, FLAGS.score_discriminator):
    if name:
      disc_lib.get(name)  # fail before the model loads
  features = data_lib.load_features(FLAGS.features)
  if FLAGS.only:
    features = [f for f in features if f.name in FLAGS.only]
    if not features:
      raise UserError(f"no feature named {FLAGS.only} in {FLAGS.features}", "check --only")
  m = load_model(FLAGS.model)
  if not m.tokenizer.has_chat_template:
    print("warning: the model has no chat template; the explainer prompt ends in 'Label:'", file=sys.stderr)
  disc = disc_lib.get(FLAGS.discriminator or disc_lib.default_for(m.tokenizer, m.cfg))
  scorer = disc_lib.get(FLAGS.score_discriminator) if FLAGS.score_discriminator else None
  lcfg = LabelConfig(threshold=FLAGS.threshold, steps=0)
  want = json.loads(json.dumps({"model": m.cfg.name, "discriminator": disc.name, "source": "explainer",
                                "config": {"explain": dataclasses.asdict(_settings()), "threshold": lcfg.threshold,
                                           "seed": lcfg.seed}}))
  summary_path = os.path.join(FLAGS.output_dir, "summary.json")
  summary = runfiles.read_summary(summary_path)
  todo = []
  for f in features:
    done = _finished(FLAGS.output_dir, f.name, want) if FLAGS.resume else None
    if done:
      summary[f.name] = runfiles.summary_entry(done)
    else:
      todo.append(f)
  if len(todo) < len(features):
    print(f"resuming: {len(features) - len(todo)} of {len(features)} features already explained in "
          f"{FLAGS.output_dir} are kept", file=sys.stderr)
  per = max(1, FLAGS.features_per_batch)
  for start in range(0, len(todo), per):
    group = todo[start:start + per]
    print(f"features {start + 1}-{start + len(group)} of {len(todo)}: {', '.join(f.name for f in group)}",
          file=sys.stderr, flush=True)
    t0 = time.time()
    explained = explainer.explain(m, group, FLAGS.threshold, _settings(), batch=per)
    t_explain = (time.time() - t0) / len(group)
    for f, e in zip(group, explained):
      t1 = time.time()
      try:
        result, examples = score_explanation(m, f, disc, lcfg, e, FLAGS.reference_labels, scorer)
      except UserError as err:  # one bad feature must not lose the others
        print(f"error: feature {f.name}: {err}", file=sys.stderr)
        continue
      result["explain_time_s"] = round(t_explain, 2)
      result["wall_time_s"] = round(t_explain + time.time() - t1, 2)
      out_dir = os.path.join(FLAGS.output_dir, f.name)
      os.makedirs(out_dir, exist_ok=True)
      with open(os.path.join(out_dir, "examples.json"), "w") as fh:
        json.dump(examples, fh, ensure_ascii=False)
      with open(os.path.join(out_dir, "result.json.tmp"), "w") as fh:
        json.dump(result, fh, indent=1, ensure_ascii=False)
      os.replace(os.path.join(out_dir, "result.json.tmp"), os.path.join(out_dir, "result.json"))
      summary[f.name] = runfiles.summary_entry(result)
      auc = result["heldout"]["auc"]
      print(f"{f.name}: {result['best_candidate']!r} ({result['label_status']}"
            + (f", held-out AUC {auc:.3f}" if auc is not None else "") + ")", flush=True)
    runfiles.write_summary(summary_path, summary)
  if summary:
    print(f"report: {report.write_report(FLAGS.output_dir)}", file=sys.stderr)
    formats.write_explanations(FLAGS.output_dir)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
