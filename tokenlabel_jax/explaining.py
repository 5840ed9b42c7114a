"""Running the LLM explainer over features (tokenlabel_jax.explainer writes the labels): each label scored on the
held-out examples exactly as `label` scores its own, written in the same layout, resumable. Used by the `explain`
launcher, `api.explain` and the comparison experiment."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any, Sequence

from tokenlabel_jax import baselines
from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import explainer
from tokenlabel_jax import labeling
from tokenlabel_jax import runfiles
from tokenlabel_jax import selection
from tokenlabel_jax.errors import UserError
from tokenlabel_jax.loading import LoadedModel
from tokenlabel_jax.optimization import LabelConfig


def settings(ecfg: explainer.ExplainConfig, lcfg: LabelConfig) -> dict[str, Any]:
  """What a finished result must have been made with to be kept by a resumed run."""
  return json.loads(json.dumps({"explain": dataclasses.asdict(ecfg), "threshold": lcfg.threshold, "seed": lcfg.seed}))


def score_explanation(m: LoadedModel, feature: data_lib.Feature, disc: disc_lib.DiscriminatorConfig,
                      lcfg: LabelConfig, ecfg: explainer.ExplainConfig, explained: dict, references: Sequence[str],
                      scorer: disc_lib.DiscriminatorConfig | None) -> tuple[dict, dict]:
  """The explanation's result.json, in `label`'s layout, and its examples.json. No usable answer is a status
  ("empty", "too long", "not text"), never an error."""
  label = explained["label"]
  ids = disc_lib.encode_label(m.tokenizer, label) if label else []
  refs = [disc_lib.encode_label(m.tokenizer, r) for r in references]
  keep_cache = labeling.needs_cache(m, disc, lcfg, selection.SelectConfig(extend_top=0),
                                    ([label] if label else []) + list(references))
  sp = labeling.build_splits(m, feature, disc, dataclasses.replace(lcfg, n_train=0), keep_cache)
  base = labeling.baseline_labels(m, feature, disc, lcfg, keep_cache)
  rows, base_figures = labeling.score_with_baselines(m, disc, ([ids] if ids else []) + refs, base, sp)
  own, ref_rows = (rows[0], rows[1:]) if ids else (None, rows)
  status, lower = explained["status"], float("nan")
  if own is not None:
    lower = selection.split_lower_bound(own["auc"], sp["heldout"], disc)
    status = "ok" if lower > selection.SelectConfig().min_auc_lower else "not above chance"
  result = {
      "feature": feature.name, "label": label if status == "ok" else None, "best_candidate": label,
      "label_status": status, "token_ids": ids, "source": "explainer", "search": "LLM explainer",
      "probability": None,
      "heldout": ({k: own[k] for k in ("auc", "accuracy", "f1")} if own
                  else {"auc": None, "accuracy": None, "f1": None}),
      "heldout_auc_lower95": lower,
      "validation": {k: own[k] for k in ("val_loss", "val_auc")} if own else {},
      "references": {r: {k: row[k] for k in labeling.FIGURES}
                     for r, row in zip(references, ref_rows)},
      "baselines": base_figures,
      "positive_words": baselines.word_spread(feature, lcfg.threshold),
      "explainer": {k: explained[k] for k in ("status", "proposals", "answers", "excerpts", "prompt_tokens")},
      "discriminator": disc.name, "model": m.cfg.name, "n_examples": {k: len(v.examples) for k, v in sp.items()},
      "config": settings(ecfg, lcfg),
  }
  if scorer is not None and ids:
    result["scorer"] = labeling.independent_scores(m, feature, scorer, lcfg, [ids] + refs, ["label", *references],
                                                   base)
  return result, labeling.example_dump(m, feature, disc, sp, ids or None)


def finished(output_dir: str, name: str, want: dict) -> dict | None:
  """The result.json a run finished for this feature with the same model, discriminator and settings, if any."""
  try:
    with open(os.path.join(output_dir, name, "result.json")) as f:
      r = json.load(f)
  except (OSError, ValueError):
    return None
  return r if isinstance(r, dict) and all(r.get(k) == v for k, v in want.items()) else None


def explain_features(m: LoadedModel, features: Sequence[data_lib.Feature], disc: disc_lib.DiscriminatorConfig,
                     lcfg: LabelConfig, ecfg: explainer.ExplainConfig, output_dir: str,
                     references: Sequence[str] = (), scorer: disc_lib.DiscriminatorConfig | None = None,
                     resume: bool = True, per_batch: int = 4, log=None) -> list[dict]:
  """Explains, scores and writes each feature (DIR/<feature>/result.json, examples.json; DIR/summary.json once per
  batch). Features finished earlier with the same settings are kept (a killed run resumes). Returns every result."""
  log = log or (lambda s: print(s, file=sys.stderr, flush=True))
  want = {"model": m.cfg.name, "discriminator": disc.name, "source": "explainer", "config": settings(ecfg, lcfg)}
  summary_path = os.path.join(output_dir, "summary.json")
  summary = runfiles.read_summary(summary_path)
  results, todo = {}, []
  for f in features:
    done = finished(output_dir, f.name, want) if resume else None
    if done:
      results[f.name] = done
      explainer.remember(m, f, lcfg.threshold, ecfg, [a["text"] for a in done["explainer"]["answers"]])
      summary[f.name] = runfiles.summary_entry(done)
    else:
      todo.append(f)
  if len(todo) < len(features):
    log(f"resuming: {len(features) - len(todo)} of {len(features)} features already explained in {output_dir} are "
        "kept")
  t_start = time.monotonic()
  for start in range(0, len(todo), per_batch):
    group = todo[start:start + per_batch]
    log(runfiles.batch_line(start, [f.name for f in group], len(todo), t_start))
    t0 = time.time()
    explained = explainer.explain(m, group, lcfg.threshold, ecfg, batch=per_batch)
    t_explain = (time.time() - t0) / len(group)
    for f, e in zip(group, explained):
      t1 = time.time()
      try:
        result, examples = score_explanation(m, f, disc, lcfg, ecfg, e, references, scorer)
      except UserError as err:  # one bad feature must not lose the others
        log(f"error: feature {f.name}: {err}")
        continue
      result["explain_time_s"] = round(t_explain, 2)
      result["wall_time_s"] = round(t_explain + time.time() - t1, 2)
      out_dir = os.path.join(output_dir, f.name)
      os.makedirs(out_dir, exist_ok=True)
      runfiles.write_json(os.path.join(out_dir, "examples.json"), examples)
      runfiles.write_json(os.path.join(out_dir, "result.json"), result, indent=1)
      results[f.name] = result
      summary[f.name] = runfiles.summary_entry(result)
      auc, top = result["heldout"]["auc"], result.get("baselines", {}).get("top_token")
      log(f"{f.name}: {result['best_candidate']!r} ({result['label_status']}"
          + (f", held-out AUC {auc:.3f}" if auc is not None else "")
          + (f"; top token {top['label']!r} {top['auc']:.3f}" if top else "") + ")")
    runfiles.write_summary(summary_path, summary)
  return [results[f.name] for f in features if f.name in results]


def aligned(results: Sequence[dict], features: Sequence[data_lib.Feature]) -> list[dict | None]:
  """`explain_features`' results in the order of `features`, None where a feature failed (it is left out of the
  list): a study that zips them with another method's results must not pair one feature's explanation with the next
  feature's label."""
  by_name = {r["feature"]: r for r in results}
  return [by_name.get(f.name) for f in features]
