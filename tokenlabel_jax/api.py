"""The public Python API, for notebooks and forks: `import tokenlabel_jax as tl`.

    m = tl.load_model()                                    # the default Qwen2.5-Coder-1.5B, a name or a path
    results = tl.label(m, {"animals": [(tokens, acts), ...]}, steps=100)
    results[0].label, results[0].auc                       # plain objects; a notebook shows `results` as a table

Features may be in-memory records (token strings with activations, lists or numpy arrays), `Feature` objects, or
paths in any format `--features` reads. The output directory is optional: without one, nothing is kept on disk.
"""

from __future__ import annotations

import dataclasses
import html
import os
import sys
import tempfile
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import formats
from tokenlabel_jax import labeling
from tokenlabel_jax import records as records_lib
from tokenlabel_jax import run
from tokenlabel_jax import runfiles
from tokenlabel_jax import runlock
from tokenlabel_jax import subject_tokens
from tokenlabel_jax import tokenizer as tokenizer_lib
from tokenlabel_jax.sae import export as export_lib
from tokenlabel_jax.config import ModelConfig
from tokenlabel_jax.errors import UserError
from tokenlabel_jax.loading import LoadedModel
from tokenlabel_jax.loading import load_model as _load_model
from tokenlabel_jax.optimization import LabelConfig


def load_model(model: str | os.PathLike | None = None, dtype: str = "float32", verbose: bool = False) -> LoadedModel:
  """A model as `--model` takes it: None for the default ($TOKENLABEL_MODEL, else 'qwen2.5-coder-1.5b'), a packaged
  model's name (e.g. 'smollm2-135m-instruct', five times faster), a Hugging Face or Flax directory, a .gguf file (a
  str or a pathlib.Path)."""
  if model is not None and not isinstance(model, (str, os.PathLike)):
    raise UserError(f"model={model!r} is a {type(model).__name__}", "pass a model's name or path as a string, or None "
                    "for the default")
  return _load_model(None if model is None else os.fspath(model), dtype, verbose=verbose)


def model_from_params(params: Mapping[str, Any], cfg: ModelConfig, tokenizer: Any, name: str = "custom"
                      ) -> LoadedModel:
  """A model from a parameter pytree and a `ModelConfig` you already hold (e.g. from `tokenlabel_jax.model.
  init_params` or your own conversion). `tokenizer`: a tokenizer directory, a transformers tokenizer, or ours."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  if isinstance(tokenizer, (str, os.PathLike)):
    tokenizer = tokenizer_lib.from_hf_dir(os.fspath(tokenizer))
  elif not isinstance(tokenizer, tokenizer_lib.Tokenizer):
    tokenizer = tokenizer_lib.Tokenizer(tokenizer)
  params = jax.tree.map(jnp.asarray, dict(params))
  if params["embed_VxD"].shape != (cfg.vocab_size, cfg.dim):
    raise UserError(f"params['embed_VxD'] has shape {params['embed_VxD'].shape}, the ModelConfig says "
                    f"{(cfg.vocab_size, cfg.dim)}", "pass the ModelConfig these parameters were made for")
  return LoadedModel(cfg, params, tokenizer, name)


@dataclasses.dataclass(frozen=True)
class LabelResult:
  """One feature's label. `auc` is the hard label's held-out AUC; `result` is the full result.json dict."""

  feature: str
  label: str | None
  auc: float | None
  probability: float | None
  references: dict[str, float]
  candidates: list[tuple[str, float]]  # (label, held-out AUC), lowest validation loss first
  runners_up: list[tuple[str, float]]  # (label, held-out AUC) the choice rule ranks next, best first
  baselines: dict[str, tuple[str, float]]  # {"top_token": (label, held-out AUC), "random_word": ...}, same examples
  scorer: dict[str, float]  # with scorer=: held-out AUCs under it of "label", each reference and each baseline
  result: dict[str, Any] = dataclasses.field(repr=False)

  @classmethod
  def from_result(cls, r: dict[str, Any]) -> "LabelResult":
    rows = sorted(r.get("verification") or [], key=lambda row: row.get("val_loss", float("inf")))
    return cls(feature=r.get("feature", ""), label=r.get("label"), auc=(r.get("heldout") or {}).get("auc"),
               probability=r.get("probability"),
               references={k: v.get("auc") for k, v in (r.get("references") or {}).items()},
               candidates=[(row.get("label"), row.get("auc")) for row in rows],
               runners_up=[(t, a) for t, a in r.get("runners_up") or []],
               baselines={k: (v.get("label"), v.get("auc")) for k, v in (r.get("baselines") or {}).items()},
               scorer=_scorer_aucs(r.get("scorer") or {}), result=r)


def _scorer_aucs(s: dict[str, Any]) -> dict[str, float]:
  """result.json's scorer entry flattened: the label's, the references' and the baselines' held-out AUCs."""
  rows = {**{k: v for k, v in s.items() if isinstance(v, dict) and k != "baselines"}, **(s.get("baselines") or {})}
  return {k: v.get("auc") for k, v in rows.items()}


class Results(list):
  """A list of `LabelResult`; shows itself as a table in a notebook."""

  def _repr_html_(self) -> str:
    head = "<tr><th>feature</th><th>label</th><th>held-out AUC</th><th>references</th><th>runners-up</th></tr>"
    rows = "".join(
        f"<tr><td>{html.escape(r.feature)}</td><td><code>{html.escape(repr(r.label))}</code></td>"
        f"<td>{'' if r.auc is None else f'{r.auc:.3f}'}</td>"
        f"<td>{html.escape(', '.join(f'{k} {v:.3f}' for k, v in r.references.items() if v is not None))}</td>"
        f"<td>{html.escape(', '.join(repr(c) for c, _ in r.runners_up))}</td></tr>" for r in self)
    return f"<table>{head}{rows}</table>"

  def __getitem__(self, key):
    if isinstance(key, str):  # results["animals"]
      for r in self:
        if r.feature == key:
          return r
      raise KeyError(key)
    return super().__getitem__(key)


def as_features(features: Any, name: str = "feature", subject_tokenizer: str | os.PathLike | None = None
                ) -> list[data_lib.Feature]:
  """Paths, `Feature`s, {name: records}, or one feature's records -> checked `Feature`s (see `formats.from_records`).
  `subject_tokenizer`, a tokenizer directory, turns token ids into strings (as --subject_tokenizer)."""
  spec = None if subject_tokenizer is None else os.fspath(subject_tokenizer)
  if isinstance(features, (str, os.PathLike)):
    return data_lib.load_features(features, spec)
  if isinstance(features, data_lib.Feature):
    return [features]
  decode = subject_tokens.IdDecoder(spec) if spec else None
  if isinstance(features, Mapping) and not formats.looks_like_record(features):
    if not features:  # as an empty list of records is
      raise UserError("no features given (an empty mapping)", "pass {name: records} with at least one feature")
    feats = [formats.from_records(recs, str(k), check=False, decode=decode) for k, recs in features.items()]
    return records_lib.check_features(feats, lambda f: [f.name])
  if isinstance(features, Iterable):
    items = list(features)
    if items and all(isinstance(x, (data_lib.Feature, str, os.PathLike)) for x in items):
      return records_lib.check_unique_names([f for x in items for f in as_features(x, name, spec)], "features")
    return [formats.from_records(items, name, decode=decode)]
  raise UserError(f"cannot read features from a {type(features).__name__}",
                  "pass a path, Feature objects, {name: records} or a list of (tokens, activations) records")


def from_arrays(tokens_NxS: Any, acts_NxSxF: Any, names: Sequence[str] | None = None,
                subject_tokenizer: str | os.PathLike | Sequence[str] | None = None, threshold: float = 0.0,
                heldout_fraction: float = 0.25, seed: int = 0, **export: Any) -> list[data_lib.Feature]:
  """Features from the arrays a research pipeline holds: tokens (N contexts x S positions, strings or ids) and dense
  activations (N x S x F, or N x S for one feature). Each feature gets the contexts an SAE dashboard would show (its
  strongest and quantile-sampled activating contexts, near misses, random ones; `sae.export.ExportConfig` fields as
  keywords, e.g. n_active=), split into training and held-out by context. Ids become strings through
  `subject_tokenizer`: a tokenizer directory, or the list of every id's string. A feature that fires in too few
  contexts of either split is skipped with a warning."""
  tokens_NxS, acts = records_lib.as_numpy(tokens_NxS), records_lib.as_numpy(acts_NxSxF).astype(np.float32)
  acts_NxSxF = acts[..., None] if acts.ndim == 2 else acts
  if tokens_NxS.ndim != 2 or acts_NxSxF.ndim != 3 or acts_NxSxF.shape[:2] != tokens_NxS.shape:
    raise UserError(f"tokens {tokens_NxS.shape} and activations {acts.shape} do not fit",
                    "give tokens as N x S and activations as N x S x F (or N x S for one feature)")
  n, _, n_feats = acts_NxSxF.shape
  names = [f"feature_{j}" for j in range(n_feats)] if names is None else [str(x) for x in names]
  if len(names) != n_feats:
    raise UserError(f"{len(names)} names for {n_feats} features", "give one name per feature (the last axis)")
  unknown = sorted(set(export) - {f.name for f in dataclasses.fields(export_lib.ExportConfig)})
  if unknown:
    raise UserError(f"unknown setting(s) {unknown}", "use fields of tokenlabel_jax.sae.export.ExportConfig")
  cfg = export_lib.ExportConfig(**{"seed": seed, **export})
  if not 0 < heldout_fraction < 1:
    raise UserError(f"heldout_fraction={heldout_fraction} is not in (0, 1)", "use e.g. 0.25")
  if tokens_NxS.dtype.kind in "iu":  # ids: index a table of strings
    if subject_tokenizer is None:
      raise UserError("tokens_NxS holds token ids", "pass subject_tokenizer=DIR (the subject model's tokenizer "
                      "files) or the list of every id's string")
    spec = os.fspath(subject_tokenizer) if isinstance(subject_tokenizer, os.PathLike) else subject_tokenizer
    ids = np.unique(tokens_NxS)
    strings = dict(zip(ids.tolist(), subject_tokens.IdDecoder(spec)(ids, "tokens_NxS")))
    table = [strings.get(i, "") for i in range(int(ids.max()) + 1)]
  else:  # strings: numbered, so that near misses find the words a feature fires on elsewhere
    table, inverse = np.unique(tokens_NxS.astype(str), return_inverse=True)
    table, tokens_NxS = table.tolist(), inverse.reshape(tokens_NxS.shape)
  heldout_N = np.random.default_rng([seed, n]).permutation(n) < round(heldout_fraction * n)
  feats, skipped = [], []
  for j, name in enumerate(names):
    recs = export_lib.feature_records(name, acts_NxSxF[:, :, j], tokens_NxS, table, heldout_N, threshold, cfg, j)
    if recs is None:
      skipped.append(name)
    else:
      feats.append(formats.from_records(recs, name, check=False))
  if skipped and not feats:
    raise UserError(f"no feature fires (activation > {threshold:g}) in {cfg.min_active} or more contexts of both "
                    f"splits: {records_lib.some_names(skipped)}", "pass more contexts, or lower the threshold")
  if skipped:
    print(f"warning: skipped {len(skipped)} of {n_feats} features that fire in fewer than {cfg.min_active} contexts "
          f"of a split: {records_lib.some_names(skipped)}", file=sys.stderr)
  return records_lib.check_features(feats, lambda f: [f.name])


def label(model: LoadedModel, features: Any, discriminator: str | disc_lib.DiscriminatorConfig | None = None,
          output_dir: str | os.PathLike | None = None, references: str | Sequence[str] = (),
          features_per_batch: int = 4, resume: bool = True, scorer: str | disc_lib.DiscriminatorConfig | None = None,
          **config: Any) -> Results:
  """Labels features; `config` sets `LabelConfig` fields (steps=, seeds=, n_train=, ...). Without steps=, the
  namer's one-token labels come from its exact vocabulary scan alone, as from the launcher. `scorer` (e.g.
  "likelihood", as --score_discriminator) scores the label, the references and the baselines again under a
  discriminator the label was not chosen by (`LabelResult.scorer`).

  With `output_dir`, results, plots, checkpoints, the report and explanations.json are written there; a killed run,
  called again, keeps the features it finished with the same settings (resume=False labels them again) and resumes
  the gradient run it was in. Without one, they go to a temporary directory that is removed.
  """
  unknown = sorted(set(config) - {f.name for f in dataclasses.fields(LabelConfig)})
  if unknown:
    raise UserError(f"unknown setting(s) {unknown}", f"use fields of LabelConfig: "
                    f"{', '.join(f.name for f in dataclasses.fields(LabelConfig))}")
  lcfg = LabelConfig(**config)
  if output_dir is not None:
    runfiles.check_apart(features, output_dir, flag="")
  feats = as_features(features)
  disc = _discriminator(discriminator or disc_lib.default_for(model.tokenizer, model.cfg))
  scorer = _discriminator(scorer)
  lcfg = dataclasses.replace(lcfg, steps=labeling.default_steps(disc, lcfg, config.get("steps")))
  references, per = labeling.label_words(references), _per_batch(features_per_batch)
  with tempfile.TemporaryDirectory(prefix="tokenlabel_") as tmp:
    out = _output_dir(output_dir, tmp)
    with runlock.hold(out):
      done = run.label_run(model, feats, disc, lcfg, out, references, scorer=scorer, per_batch=per,
                           resume=resume and output_dir is not None, finish=output_dir is not None)
      raw = [done[f.name] for f in feats]
  return Results(LabelResult.from_result(r) for r in raw)


def _output_dir(output_dir: str | os.PathLike | None, tmp: str) -> str:
  """Where a run writes: `output_dir`, checked writable before any work, or the temporary `tmp`."""
  if output_dir is None:
    return tmp
  out = os.fspath(output_dir)
  runfiles.check_writable(out, f"output_dir={out!r}")
  return out


def _per_batch(features_per_batch: int) -> int:
  if isinstance(features_per_batch, bool) or not isinstance(features_per_batch, int) or features_per_batch < 1:
    raise UserError(f"features_per_batch={features_per_batch!r} is not allowed",
                    "give features_per_batch a whole number of at least 1")
  return features_per_batch


def _discriminator(d: str | disc_lib.DiscriminatorConfig | None) -> disc_lib.DiscriminatorConfig | None:
  return d if d is None or isinstance(d, disc_lib.DiscriminatorConfig) else disc_lib.get(d)


def explain(model: LoadedModel, features: Any, discriminator: str | disc_lib.DiscriminatorConfig | None = None,
            output_dir: str | os.PathLike | None = None, references: str | Sequence[str] = (), threshold: float = 0.0,
            features_per_batch: int = 4, resume: bool = True, label_config: Mapping[str, Any] | None = None,
            scorer: str | disc_lib.DiscriminatorConfig | None = None, **explain_config: Any) -> Results:
  """The LLM-explainer baseline on the same model: each feature's label written by the model from its
  top-activating contexts, scored on held-out examples as `label`'s are. `explain_config` sets `ExplainConfig`
  fields (samples=, n_top=, ...), `label_config` the `LabelConfig` fields of the scoring (n_val=, n_heldout=, ...),
  `scorer` a second discriminator as in `label`. Outputs as `label`'s (a temporary directory without
  `output_dir`)."""
  from tokenlabel_jax import explainer, explaining  # pylint: disable=import-outside-toplevel
  unknown = sorted(set(explain_config) - {f.name for f in dataclasses.fields(explainer.ExplainConfig)})
  if unknown:
    raise UserError(f"unknown setting(s) {unknown}", "use fields of tokenlabel_jax.explainer.ExplainConfig")
  ecfg = explainer.ExplainConfig(**explain_config)
  if output_dir is not None:
    runfiles.check_apart(features, output_dir, flag="")
  feats = as_features(features)
  disc = _discriminator(discriminator or disc_lib.default_for(model.tokenizer, model.cfg))
  scorer = _discriminator(scorer)
  references, per = labeling.label_words(references), _per_batch(features_per_batch)
  with tempfile.TemporaryDirectory(prefix="tokenlabel_") as tmp:
    out = _output_dir(output_dir, tmp)
    with runlock.hold(out):
      lcfg = LabelConfig(**{**(label_config or {}), "threshold": threshold, "steps": 0})
      why = []  # a failed feature's error line; the progress lines are not shown
      raw = explaining.explain_features(model, feats, disc, lcfg, ecfg, out, references, scorer,
                                        resume and output_dir is not None, per,
                                        log=lambda s: why.append(s) if s.startswith("error:") else None)
      if output_dir is not None:
        from tokenlabel_jax import report  # pylint: disable=import-outside-toplevel
        report.write_report(out)
        formats.write_explanations(out)
  runfiles.check_all_done([f.name for f in feats], raw, None if output_dir is None else os.fspath(output_dir), why)
  return Results(LabelResult.from_result(r) for r in raw)
