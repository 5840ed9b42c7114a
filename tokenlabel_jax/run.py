"""A labeling run over an output folder, as the launcher (`label`) and the Python API (`tl.label`) both run it.

Keep what an earlier run finished with the same settings, label the rest F features at a time (`labeling.py`), go on
past a feature that fails, keep summary.json current, and end with the report and explanations.jsonl. One loop for
both, so a folder either of them writes reads the same and resumes the same.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Sequence

from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import formats
from tokenlabel_jax import labeling
from tokenlabel_jax import report
from tokenlabel_jax import runfiles
from tokenlabel_jax import selection
from tokenlabel_jax import sharding
from tokenlabel_jax.errors import UserError
from tokenlabel_jax.loading import LoadedModel
from tokenlabel_jax.optimization import LabelConfig


def to_stderr(line: str) -> None:
  print(line, file=sys.stderr, flush=True)


def label_line(r: dict[str, Any]) -> str:
  """One finished feature: "animal: ' animal'  (held-out AUC 0.898; top token 'pup' 0.475)", or why it has none."""
  scored = f", {r['scorer']['discriminator']} AUC {r['scorer']['label']['auc']:.3f}" if "scorer" in r else ""
  top = r.get("baselines", {}).get("top_token")  # what the label's AUC is to be read against
  scored += f"; top token {top['label']!r} {top['auc']:.3f}" if top else ""
  top_s = r.get("scorer", {}).get("baselines", {}).get("top_token")
  scored += f", {r['scorer']['discriminator']} {top_s['auc']:.3f}" if top and top_s else ""
  nexts = "; next: " + ", ".join(repr(t) for t, _ in r["runners_up"]) if r.get("runners_up") else ""
  return (f"{r['feature']}: {r['label']!r}  ({labeling.p_note(r)}held-out AUC {r['heldout']['auc']:.3f}{scored})"
          + ("" if r["label"] else f"  no label: best candidate {r['best_candidate']!r} is not above chance")
          + nexts)


def _feature_error(name: str, e: UserError) -> str:
  """The error line of one failed feature, naming it once."""
  text = str(e)
  return f"error: {text}" if text.startswith(f"feature {name!r}") else f"error: feature {name}: {text}"


def label_run(m: LoadedModel, features: Sequence[data_lib.Feature], disc: disc_lib.DiscriminatorConfig,
              lcfg: LabelConfig, output_dir: str, references: Sequence[str] = (),
              scfg: selection.SelectConfig = selection.SelectConfig(),
              scorer: disc_lib.DiscriminatorConfig | None = None, per_batch: int = 4, resume: bool = True,
              place: sharding.FeaturePlacer | None = None, warm: bool = True, plots: bool = True,
              writer: bool = True, finish: bool = True,
              log: Callable[[str], None] = to_stderr) -> dict[str, dict[str, Any]]:
  """Labels `features` into `output_dir` and returns {name: result} in their order. `writer`: this process writes
  the files (process 0 of a multi-host job; every process computes); `finish`: the folder is the user's (not the
  API's temporary one): write the report and explanations.jsonl at the end; `place`: as for
  `labeling.label_features`; `warm`: run the namer's distinct prompts once up front when there are several batches.
  A feature that fails is named and skipped; the run then ends with one UserError naming every one of them, after
  the others are written."""
  say = log if writer else (lambda s: None)
  scfg = selection.for_model(scfg, m.cfg, m.tokenizer.has_chat_template)
  summary_path = os.path.join(output_dir, "summary.json")
  summary = runfiles.read_summary(summary_path)
  done = labeling.finished_results(output_dir, [f.name for f in features], m, disc, lcfg, scfg) if resume else {}
  if done:
    say(f"resuming: {len(done)} of {len(features)} features already labeled in {output_dir} with these settings are "
        "kept (--noresume, or resume=False, labels them again)")
    summary |= {name: runfiles.summary_entry(r) for name, r in done.items()}
    if writer:
      runfiles.write_summary(summary_path, summary)
  todo = [f for f in features if f.name not in done]
  if warm and len(todo) > per_batch:
    keep_cache = labeling.needs_cache(m, disc, lcfg, scfg, references)
    labeling.warm_prompts(m, todo, disc, lcfg, keep_cache, say, labeling.uses_train_prompts(lcfg, scfg))

  def label(group):
    return labeling.label_features(m, group, disc, lcfg, output_dir, references, resume, place, scfg, scorer,
                                   write=writer, plots=plots)

  failed, t0 = [], time.monotonic()
  for start in range(0, len(todo), per_batch):
    group = todo[start:start + per_batch]
    say(runfiles.batch_line(start, [f.name for f in group], len(todo), t0))
    try:
      results = label(group)
    except runfiles.WriteError:  # a full disk: every later feature would fail alike
      raise
    except UserError as e:  # one bad feature must not lose the others: the group again, one by one
      results, errors = [], {}
      if len(group) == 1:
        errors[group[0].name] = e
      else:
        for feature in group:
          try:
            results += label([feature])
          except runfiles.WriteError:
            raise
          except UserError as e1:
            errors[feature.name] = e1
      for name, err in errors.items():
        say(_feature_error(name, err))
        failed.append(name)
    for r in results:
      done[r["feature"]] = r
      summary[r["feature"]] = runfiles.summary_entry(r)
      say(label_line(r))
    if writer and results:  # once per batch: rewriting it per feature is quadratic in a run of thousands
      runfiles.write_summary(summary_path, summary)
  if writer and finish and os.path.exists(summary_path):
    say(f"report: {report.write_report(output_dir)}")
    formats.write_explanations(output_dir)
  if failed:
    raise runfiles.failed_error(failed, len(features), output_dir if finish else None)
  return {f.name: done[f.name] for f in features}
