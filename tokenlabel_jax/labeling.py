"""Labeling features end to end, in the order this file reads:

1. examples -> prepared prompts: `build_splits` draws a feature's train, validation and held-out examples (data.py)
   and prepares the discriminator's prompt of each once (discriminators/prefix.py) into a `splits.Split`;
2. candidates: a gradient run over soft labels where one is needed (optimization.py; `default_steps`), then each
   seed's top tokens of p and of the gradient plus, for the namer, the exact vocabulary scan (`selection.gather`);
3. the choice: `selection.choose_label`, the one place a label is chosen;
4. the held-out report: the chosen label's held-out AUC and its lower 95% bound (no label when it is not above
   chance), reference labels and an independent scorer on the same examples, written as result.json and examples.json.

A label enters the model in one file, discriminators/scoring.py (`scores`, `hard_scores`, `namer_scores`).
The figure that counts is the hard label's score on held-out examples, never the soft label's training loss: the
soft mixture can fool the discriminator with an embedding no single token has.
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import json
import os
import sys
import time
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tokenlabel_jax import baselines
from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import evaluation
from tokenlabel_jax import explainer
from tokenlabel_jax import objective
from tokenlabel_jax import optimization as opt_lib
from tokenlabel_jax import plots as plots_lib
from tokenlabel_jax import runfiles
from tokenlabel_jax import selection
from tokenlabel_jax import sharding
from tokenlabel_jax.errors import UserError
from tokenlabel_jax.loading import LoadedModel
from tokenlabel_jax.splits import Split, evaluate_labels, example_texts

FIGURES = ("auc", "accuracy", "f1", "val_loss")  # what result.json keeps of a scored label (`evaluate_labels`' row)


# ----------------------------------------------------------------------------------------------------------------
# 1. Examples -> prepared prompts: what a label is measured on (the Split type and texts: splits.py).


def sample_split(feature: data_lib.Feature, lcfg: opt_lib.LabelConfig, split: str) -> list[data_lib.Example]:
  """The examples a labeling run draws from the feature's "train" records (train + validation) or "heldout" ones."""
  n = lcfg.n_train + lcfg.n_val if split == "train" else lcfg.n_heldout
  return data_lib.sample_examples(feature, n=n, split=split, seed=lcfg.seed, positive_fraction=lcfg.positive_fraction,
                                  negatives=lcfg.negatives, target_mode=lcfg.target_mode, threshold=lcfg.threshold,
                                  scale_quantile=lcfg.target_scale_quantile)


def build_splits(m: LoadedModel, feature: data_lib.Feature, disc: disc_lib.DiscriminatorConfig,
                 lcfg: opt_lib.LabelConfig, keep_cache: bool = True, prepare_train: bool = True) -> dict[str, Split]:
  """Train and validation come from the feature's train records, held-out from its held-out records.

  `keep_cache=False` (namer): no prefix keys/values, for runs that score only one-token labels (`needs_cache`).
  `prepare_train=False`: the training examples are drawn (so validation is the same) but their prompts are not run
  (`uses_train_prompts`); their Split has no prep."""
  train_val = sample_split(feature, lcfg, "train")
  heldout = sample_split(feature, lcfg, "heldout")
  parts = {name: exs for name, exs in (("train", train_val[:lcfg.n_train]), ("val", train_val[lcfg.n_train:]),
                                         ("heldout", heldout)) if exs}  # a split may be empty: scoring only
  targets, positives = {}, {}
  for name, exs in parts.items():
    targets[name] = np.array([e.target for e in exs], np.float32)
    positives[name] = np.array([e.positive for e in exs], bool)
    pos = positives[name]
    if pos.all() or not pos.any():
      raise UserError(f"feature {feature.name!r}: the {name} examples are all {'positive' if pos.all() else 'negative'}"
                      f" (activation > {lcfg.threshold:g})",
                      "give the feature both active and inactive tokens in each split, or raise --n_" + name)
  run = [name for name in parts if prepare_train or name != "train"]
  preps = disc_lib.prepare_splits(m.params, m.cfg, m.tokenizer, disc,
                                  [example_texts(feature, parts[name], disc) for name in run], lcfg.label_slots,
                                  keep_cache=keep_cache)
  preps = dict(zip(run, preps))
  if disc.kind == "namer" and "train" in preps:
    # The namer's step and gradient read only log q at the slot: training examples keep no KV cache (multi-token
    # labels are scored on validation and held-out examples, which keep theirs).
    preps["train"] = dataclasses.replace(preps["train"], cache=disc_lib.empty_cache(preps["train"].cache))
  return {name: Split(exs, preps.get(name), targets[name], positives[name]) for name, exs in parts.items()}


def uses_train_prompts(lcfg: opt_lib.LabelConfig, scfg: selection.SelectConfig) -> bool:
  """Whether a run reads its training examples' prompts: the gradient does, and the coverage rule (its log-rank
  gap); the namer's scan with the set namer or the ask rule reads only validation and held-out prompts (a third
  fewer passes; those rules read the training records' words, not their prompts)."""
  return lcfg.steps > 0 or scfg.rule not in ("set_namer", "ask")


def warm_prompts(m: LoadedModel, features: Sequence[data_lib.Feature], disc: disc_lib.DiscriminatorConfig,
                 lcfg: opt_lib.LabelConfig, keep_cache: bool, log=None, with_train: bool = True) -> int:
  """Namer: every distinct prompt of these features' examples run once, up front, into the prefix memo (as far as it
  holds them); the features' own preparation then only gathers rows. Other formulations' prompts hold the whole
  context, rarely shared: nothing to do. Returns how many prompts ran."""
  if disc.kind != "namer":
    return 0
  per_feature = []
  for f in features:
    try:
      train_val = sample_split(f, lcfg, "train")
      per_feature.append(example_texts(f, (train_val if with_train else train_val[lcfg.n_train:])
                                       + sample_split(f, lcfg, "heldout"), disc))
    except UserError:  # reported when the feature itself is labeled
      continue
  return disc_lib.warm_memo(m.params, m.cfg, m.tokenizer, disc, per_feature, lcfg.label_slots, keep_cache, log=log)


def needs_cache(m: LoadedModel, disc: disc_lib.DiscriminatorConfig, lcfg: opt_lib.LabelConfig,
                scfg: selection.SelectConfig, references: Sequence[str]) -> bool:
  """Whether prepared examples must keep their prefix keys/values: every formulation but the namer reads them, and
  the namer does for labels of several tokens (two-token extensions, several slots, multi-token reference labels,
  the explainer's proposals). Without them the namer's prompt rows are five times smaller (the prefix memo then
  holds five times as many)."""
  need = (disc.kind != "namer" or lcfg.label_slots > 1 or bool(scfg.extend_top) or scfg.propose_with != "none"
          or any(len(disc_lib.encode_label(m.tokenizer, r)) > 1 for r in references))
  if need and disc.also:
    raise UserError(f"the {disc.name} discriminator averages the log q of {1 + len(disc.also)} prompts: it scores "
                    "one-token labels only (no two-token extensions, several slots or multi-token reference labels)",
                    "use --discriminator=namer for those")
  return need


def baseline_labels(m: LoadedModel, feature: data_lib.Feature, disc: disc_lib.DiscriminatorConfig,
                    lcfg: opt_lib.LabelConfig, keep_cache: bool) -> dict[str, tuple[str, list[int]]]:
  """`baselines.labels` as this run's prompts can score them: a top token of several tokens only where the prompts
  keep their keys/values, which an ensemble namer never does (`needs_cache`)."""
  return baselines.labels(m, feature, lcfg.threshold, lcfg.seed, keep_cache and not disc.also)


# ----------------------------------------------------------------------------------------------------------------
# 2. How candidates are searched: the exact scan, a gradient run, or both.


def scan_suffices(disc: disc_lib.DiscriminatorConfig, lcfg: opt_lib.LabelConfig) -> bool:
  """Whether the exact vocabulary scan already finds every label the gradient run could add (the default steps
  are then 0). The namer scores a one-token label by log q(label) at the slot, linear in p: a soft label's top tokens
  are tokens the scan scores exactly. Under the lowest-loss rule the gradient cannot change the label; under the
  coverage rule (tuned without it) it only changes which log-rank tokens compete. Measured: the same label with and
  without the gradient on the 26 concepts and on 114 of the naming benchmark's 117 test categories."""
  return disc.kind == "namer" and lcfg.label_slots == 1


def allowed_tokens(m: LoadedModel, lcfg: opt_lib.LabelConfig) -> np.ndarray:
  """The tokens a label may use (V booleans): word-like ones, or all with vocab_filter="all"."""
  if lcfg.vocab_filter == "words":
    return disc_lib.word_like_mask(m.tokenizer, m.cfg.vocab_size)
  return np.ones(m.cfg.vocab_size, bool)


def label_words(labels: str | Sequence[str]) -> list[str]:
  """Labels a person gave (references, `score --labels`): one string is one label, not its letters; an empty entry
  (a doubled or trailing comma in a flag) is no label, and a repeat is scored once."""
  labels = [labels] if isinstance(labels, str) else list(labels)
  bad = [l for l in labels if not isinstance(l, str)]
  if bad:
    raise UserError(f"label {bad[0]!r} is not a string", "give labels as strings, e.g. ['animal', 'creature']")
  return list(dict.fromkeys(l for l in labels if l))


def default_steps(disc: disc_lib.DiscriminatorConfig, lcfg: opt_lib.LabelConfig, given: int | None) -> int:
  """The step count a run uses: the one given, else 0 where the exact scan suffices, else lcfg.steps. The launcher,
  `api.label` and the experiments all resolve it here, before any feature is labeled, so a run without training
  examples (which the gradient run and the choice rules both read) stops here."""
  if lcfg.n_train < 1:
    raise UserError(f"n_train={lcfg.n_train}: labeling needs training examples (the gradient run and the choice "
                    "rules read them)", "give n_train at least 1 (--n_train); only scoring works without them")
  return given if given is not None else 0 if scan_suffices(disc, lcfg) else lcfg.steps


# ----------------------------------------------------------------------------------------------------------------
# 3. The spine: features in, result.json out.


def label_features(m: LoadedModel, features: Sequence[data_lib.Feature], disc: disc_lib.DiscriminatorConfig,
                   lcfg: opt_lib.LabelConfig, output_dir: str,
                   references: Sequence[str] | Mapping[str, Sequence[str]] = (), resume: bool = True,
                   place: sharding.FeaturePlacer | None = None, scfg: selection.SelectConfig = selection.SelectConfig(),
                   scorer: disc_lib.DiscriminatorConfig | None = None, write: bool | None = None,
                   plots: bool = True) -> list[dict[str, Any]]:
  """Labels F features together (one vmapped optimization) and writes each one's result under output_dir/<name>/.

  `references` are labels scored beside the label on the same examples: one list for every feature, or a list per
  feature name (a baseline that differs by feature, such as its most frequent top-activating token). `place` puts
  feature-stacked arrays on devices (default: split over the feature axis of the mesh the model's
  parameters are on); `scfg` says how the label is chosen among candidates; `scorer`, a second discriminator, adds
  independent held-out figures. `write` (default: process 0 of a multi-host job) says whether this process writes
  files; every process computes the same results; `plots`, whether it draws each feature's trajectory.png.
  """
  t0 = time.time()
  write = jax.process_index() == 0 if write is None else write
  log = (lambda s: print(s, file=sys.stderr, flush=True)) if write else (lambda s: None)
  place = place or sharding.FeaturePlacer(sharding.mesh_of(m.params))
  names = [f.name for f in features]
  log(f"[{', '.join(names)}] preparing prompts ({disc.name} discriminator)")
  every_ref = ([r for n in names for r in references.get(n, ())] if isinstance(references, Mapping)
               else list(references))
  scfg = selection.for_model(scfg, m.cfg, m.tokenizer.has_chat_template)
  keep_cache = needs_cache(m, disc, lcfg, scfg, every_ref)
  proposals = _explainer_proposals(m, features, disc, lcfg, scfg, log)
  splits = [build_splits(m, f, disc, lcfg, keep_cache, uses_train_prompts(lcfg, scfg)) for f in features]
  prep = None  # the training examples stacked over features, for the gradient run only
  if lcfg.steps > 0:
    prep = place(disc_lib.stack([s["train"].prep for s in splits]))
    for s in splits:  # the placed copy is the one kept: feature f's training examples are prep[f]
      s["train"].prep = None
  targets = np.stack([s["train"].target_B for s in splits])
  mask_V = allowed_tokens(m, lcfg)
  group_dir = os.path.join(output_dir, names[0] if len(names) == 1 else os.path.join(".groups", "+".join(names)))
  ckpt = opt_lib.Checkpointer(os.path.join(group_dir, "checkpoints")) if resume and lcfg.steps > 0 else None
  fingerprint = {"config": dataclasses.asdict(lcfg), "discriminator": disc.name, "model": m.cfg.name,
                 "features": names}
  fingerprint = json.loads(json.dumps(fingerprint))  # tuples -> lists, as the JSON round trip would give
  if lcfg.steps > 0:
    state, history = opt_lib.train(m.params, m.cfg, disc, lcfg, prep, targets, mask_V, ckpt, log, fingerprint, place)
    labels = state.label
  elif disc.kind == "namer":  # the exact scan alone (scan_suffices): no soft label, nothing to checkpoint
    labels, history = None, []
  else:
    raise UserError(f"steps=0 leaves the {disc.name} discriminator without candidates (only the namer has an exact "
                    "vocabulary scan)", "pass --steps=N (300 by default) or use --discriminator=namer")
  train_time = time.time() - t0
  results = []
  for f, (feature, sp) in enumerate(zip(features, splits)):
    t1 = time.time()
    out_dir = os.path.join(output_dir, feature.name)
    label_S = None if labels is None else jax.tree.map(lambda x: x[f], labels)
    train_prep = sp["train"].prep if prep is None else place.take(prep, f)  # padded to the batch's: inert
    refs = references.get(feature.name, ()) if isinstance(references, Mapping) else references
    base = baseline_labels(m, feature, disc, lcfg, keep_cache)
    result, heldout_prob = _verify_and_report(m, feature, disc, lcfg, sp, train_prep, label_S, mask_V, refs, scfg,
                                              scorer, proposals[f], base)
    result["wall_time_s"] = round(train_time / len(features) + time.time() - t1, 2)
    hint = "" if result["label"] else context_hint(disc, sp["heldout"]) or evidence_hint(disc, sp["heldout"])
    if hint:
      result["hint"] = hint
    if write:
      os.makedirs(out_dir, exist_ok=True)  # result.json last: a resumed run keeps a feature whose result it reads
      runfiles.write_json(os.path.join(out_dir, "examples.json"),
                          example_dump(m, feature, disc, sp, result.get("token_ids"), heldout_prob))
      runfiles.write_json(os.path.join(out_dir, "result.json"), result, indent=1)
    if write and plots:
      feature_history = [{k: v[f] for k, v in h.items()} for h in history]
      plots_lib.trajectory(feature_history, os.path.join(out_dir, "trajectory.png"),
                       title=f"{feature.name}: {result['label']!r}", token_str=m.tokenizer.token_str)
    why_none = "" if result["label"] else (f" (best candidate {result['best_candidate']!r} is not above chance: "
                                           f"no label{'; ' + hint if hint else ''})")
    log(f"[{feature.name}] label {result['label']!r} ({p_note(result)}held-out AUC {result['heldout']['auc']:.3f})"
        + why_none)
    results.append(result)
  _return_freed_memory()
  return results


CONTEXT_HINT_SHARE = 0.5


def context_hint(disc: disc_lib.DiscriminatorConfig, heldout: Split) -> str:
  """Why a word-only discriminator found nothing, when the feature's positive words are also its negatives' words."""
  if disc.reads_context:
    return ""
  share = data_lib.shared_word_share(heldout.examples)
  if share < CONTEXT_HINT_SHARE:
    return ""
  return (f"{share:.0%} of the held-out positives' words are also negatives' words, so the feature follows the "
          f"context, which the {disc.name} discriminator does not read: try --discriminator=namer_context")


FEW_EVIDENCE = 8  # independent positive scores below which a withheld label says more of the data than of the label


def evidence_hint(disc: disc_lib.DiscriminatorConfig, heldout: Split) -> str:
  """Why the chance check withheld a label when the held-out positives are a handful of words (or, for a
  discriminator that reads the context, tokens): too few independent scores to tell any label from chance."""
  by_word = not disc.reads_context
  n = heldout.effective_counts(by_word)[0]
  if n >= FEW_EVIDENCE:
    return ""
  unit = "words" if by_word else "tokens"
  return (f"the held-out positives amount to {n:.1f} independent {unit}, too few to tell a label from chance: add "
          f"records where the feature fires on more {unit}")


def _explainer_proposals(m: LoadedModel, features: Sequence[data_lib.Feature], disc: disc_lib.DiscriminatorConfig,
                         lcfg: opt_lib.LabelConfig, scfg: selection.SelectConfig, log) -> list[dict[str, Any]]:
  """With `propose_with="explainer"`: the LLM explainer's answers per feature (several samples), which join the
  candidate pool as token labels of any length; otherwise nothing."""
  if scfg.propose_with == "none":
    return [{"texts": [], "ids": []} for _ in features]
  if scfg.propose_with != "explainer" or disc.kind != "namer":
    raise UserError(f"propose_with={scfg.propose_with!r} with the {disc.name} discriminator is not supported",
                    "use --propose_with=explainer with the namer discriminator, or none")
  log(f"[{', '.join(f.name for f in features)}] asking the explainer ({scfg.proposals} answers each)")
  explained = explainer.explain(m, features, lcfg.threshold, explainer.ExplainConfig(samples=scfg.proposals),
                                batch=len(features))
  return [{"texts": e["proposals"], "ids": [disc_lib.encode_label(m.tokenizer, t) for t in e["proposals"]],
           "answers": e["answers"]} for e in explained]


def label_feature(m: LoadedModel, feature: data_lib.Feature, disc: disc_lib.DiscriminatorConfig,
                  lcfg: opt_lib.LabelConfig, out_dir: str, references: Sequence[str] = (), resume: bool = True
                  ) -> dict[str, Any]:
  """Labels one feature; writes out_dir/result.json, trajectory.png and checkpoints/."""
  parent, name = os.path.split(os.path.normpath(out_dir))
  return label_features(m, [dataclasses.replace(feature, name=name)], disc, lcfg, parent, references, resume)[0]


# ----------------------------------------------------------------------------------------------------------------
# 4. Candidates -> the choice (selection.choose_label) -> the held-out report.


def _verify_and_report(m: LoadedModel, feature: data_lib.Feature, disc: disc_lib.DiscriminatorConfig,
                       lcfg: opt_lib.LabelConfig, sp: dict[str, Split], train_prep: disc_lib.Prepared, label_S,
                       mask_V: np.ndarray, references: Sequence[str], scfg: selection.SelectConfig,
                       scorer: disc_lib.DiscriminatorConfig | None, proposed: dict[str, Any] | None = None,
                       base: Mapping[str, tuple[str, list[int]]] | None = None
                       ) -> tuple[dict[str, Any], np.ndarray | None]:
  """Every seed's top-k tokens of p and of the gradient (and, for the namer, the exact vocabulary scan and two-token
  extensions) scored exactly as hard labels on validation examples; `selection.choose_label` picks one. The reference
  labels and the baselines `base` (`baselines.labels`) are scored on the same examples. Returns the result and, for
  the namer, the chosen label's calibrated held-out probabilities (for examples.json)."""
  if label_S is None:  # no gradient run: the namer's exact scan gives every candidate
    from_p, from_grad = [], []
  else:
    from_p = opt_lib.candidates(label_S["v_NxV"], mask_V, lcfg.top_k)
    from_grad = opt_lib.gradient_candidates(m.params, m.cfg, disc, lcfg, label_S, train_prep,
                                            sp["train"].target_B, mask_V, lcfg.top_k)
  cands = selection.gather(m, disc, sp["val"], mask_V,
                           [(t, "p") for t in from_p] + [(t, "gradient") for t in from_grad],
                           scfg, (proposed or {}).get("ids", ()))
  chosen = selection.choose_label(m, disc, feature, lcfg, sp, train_prep, cands, mask_V, scfg,
                                  (proposed or {}).get("texts", ()))
  heldout = {k: chosen.stats[k] for k in ("auc", "accuracy", "f1")}
  lower = selection.split_lower_bound(heldout["auc"], sp["heldout"], disc)
  is_label = bool(lower > scfg.min_auc_lower)
  first = chosen.ids[0]
  soft = {"probability": None, "top_k": [], "seed_argmax": []}  # the soft label's view, when there is one
  if label_S is not None:
    p = np.asarray(objective.label_probs(label_S["v_NxV"], jnp.asarray(mask_V)))[:, 0]
    best_seed = int(np.argmax(p[:, first]))
    soft = {"probability": float(p[best_seed, first]),
            "top_k": [[m.tokenizer.token_str(int(t)), float(p[best_seed, t])] for t in np.argsort(-p[best_seed])[:10]],
            "seed_argmax": [m.tokenizer.token_str(int(t)) for t in p.argmax(-1)]}
  ref_ids = [disc_lib.encode_label(m.tokenizer, r) for r in references]
  ref_rows, base_figures = score_with_baselines(m, disc, ref_ids, base, sp)
  result = {
      "feature": feature.name,
      # None when the best candidate does not beat chance on held-out examples: no label is better than a wrong one.
      "label": chosen.text if is_label else None,
      "best_candidate": chosen.text,
      "label_status": "ok" if is_label else "not above chance",
      "token_id": first,
      "token_ids": list(chosen.ids),
      "source": chosen.source,
      "probability": soft["probability"],
      "top_k": soft["top_k"],
      "search": "gradient + exact scan" if label_S is not None and disc.kind == "namer" else
                "gradient" if label_S is not None else "exact scan",
      "steps": lcfg.steps,
      "seeds": lcfg.seeds,
      "heldout": heldout,
      "heldout_auc_lower95": lower,
      "validation": {k: chosen.stats.get(k) for k in ("val_loss", "val_auc", "naturalness", "typicality",
                                                     *(("lrg", "typ_all", "set_pos") if "lrg" in chosen.stats
                                                       else ()))},
      "references": {r: {k: row[k] for k in FIGURES} for r, row in zip(references, ref_rows)},
      # The simplest labels, on the same examples: what the label's AUC is to be read against.
      "baselines": base_figures,
      # Which words fire it, and how many make half: whether one word could say it all.
      "positive_words": baselines.word_spread(feature, lcfg.threshold),
      # What the choice rule ranks next, with their held-out AUCs: a person may read the category's name among them.
      "runners_up": [[c.text, c.stats.get("auc")] for c in selection.runners_up(
          cands, chosen, selection.for_model(scfg, m.cfg, m.tokenizer.has_chat_template))],
      "verification": selection.stored_rows(cands),
      "seed_argmax": soft["seed_argmax"],
      "discriminator": disc.name,
      "model": m.cfg.name,
      "n_examples": {k: len(v.examples) for k, v in sp.items()},
      "config": dataclasses.asdict(lcfg),
      "selection": dataclasses.asdict(scfg),
  }
  if proposed and proposed.get("answers") is not None:
    result["explainer"] = {"proposals": proposed["texts"], "answers": proposed["answers"]}
  if scorer is not None:
    result["scorer"] = independent_scores(m, feature, scorer, lcfg, [list(chosen.ids)] + ref_ids,
                                          ["label"] + list(references), base)
  return result, chosen.p_test


def independent_scores(m: LoadedModel, feature: data_lib.Feature, scorer: disc_lib.DiscriminatorConfig,
                       lcfg: opt_lib.LabelConfig, label_ids: Sequence[Sequence[int]], names: Sequence[str],
                       base: Mapping[str, tuple[str, list[int]]] | None = None) -> dict[str, Any]:
  """Held-out figures of labels under a discriminator that was not optimized against, on the same held-out examples
  (its own validation examples fit its calibration): a member word that fooled one prompt rarely fools another. The
  baselines `base` (`baselines.labels`) under it too, under "baselines": whether the label beats the top token should
  not rest on the discriminator the label was chosen by."""
  sp = build_splits(m, feature, scorer, dataclasses.replace(lcfg, n_train=0))
  rows, base_figures = score_with_baselines(m, scorer, label_ids, base, sp)
  out = {"discriminator": scorer.name, **{n: {k: row[k] for k in FIGURES} for n, row in zip(names, rows)}}
  if base_figures:
    out["baselines"] = base_figures
  return out


def score_with_baselines(m: LoadedModel, disc: disc_lib.DiscriminatorConfig, label_ids: Sequence[Sequence[int]],
                         base: Mapping[str, tuple[str, list[int]]] | None, sp: dict[str, Split]
                         ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
  """The labels' rows of `evaluate_labels` and result.json's `baselines` (each baseline's word with its figures),
  scored together on the same validation and held-out examples."""
  base = dict(base or {})
  ids = list(label_ids) + [b for _, b in base.values()]
  rows = evaluate_labels(m, disc, ids, sp["val"], sp["heldout"]) if ids else []
  n = len(label_ids)
  return rows[:n], {name: {"label": text, **{k: row[k] for k in FIGURES}}
                    for (name, (text, _)), row in zip(base.items(), rows[n:])}


# ----------------------------------------------------------------------------------------------------------------
# 5. What is written, and what a restarted run keeps.


def example_dump(m: LoadedModel, feature: data_lib.Feature, disc: disc_lib.DiscriminatorConfig, sp: dict[str, Split],
                 label_ids: Sequence[int] | None, probs_B: np.ndarray | None = None, n_top: int = 20,
                 before: int = 12, after: int = 6) -> dict[str, Any]:
  """What the run report shows a reader: the records with the highest activations (all tokens, for shading) and
  every held-out example with its activation, target and the calibrated score of the hard label `label_ids` (the
  label, or the best candidate when no label was kept): `probs_B` when selection computed them, else computed here."""
  peak = [float(r.activations.max()) for r in feature.records]
  top = sorted(range(len(feature.records)), key=lambda i: -peak[i])[:n_top]
  dump: dict[str, Any] = {
      "feature": feature.name,
      "top_records": [{"tokens": list(feature.records[i].tokens),
                       "activations": [round(float(a), 4) for a in feature.records[i].activations],
                       "split": feature.records[i].split, "source": feature.records[i].source} for i in top],
      "heldout": [],
  }
  test = sp.get("heldout")
  if test is None:
    return dump
  probs = probs_B
  if probs is None and label_ids and "val" in sp and test.prep is not None and sp["val"].prep is not None:
    ids = jnp.asarray([list(label_ids)], jnp.int32)
    s_val = np.asarray(disc_lib.hard_scores(m.params, m.cfg, disc, sp["val"].prep, ids))
    s_test = np.asarray(disc_lib.hard_scores(m.params, m.cfg, disc, test.prep, ids))
    a, b, _ = opt_lib.fit_calibration(s_val, sp["val"].target_B, disc.max_scale if disc.calibrate else None)
    probs = evaluation.sigmoid(evaluation.calibrated_logit(a[0], b[0], s_test[0]))
  for j, ex in enumerate(test.examples):
    rec = feature.records[ex.record]
    left, tok, right = data_lib.context_window(rec, ex.index, before, after)
    dump["heldout"].append({"tokens": [*left, tok, *right], "index": len(left),
                            "activation": round(float(rec.activations[ex.index]), 4), "target": float(ex.target),
                            "positive": bool(ex.positive),
                            "score": None if probs is None else round(float(probs[j]), 4)})
  return dump


def finished_results(output_dir: str, names: Sequence[str], m: LoadedModel, disc: disc_lib.DiscriminatorConfig,
                     lcfg: opt_lib.LabelConfig, scfg: selection.SelectConfig) -> dict[str, dict[str, Any]]:
  """The result.json of each named feature that an earlier run in `output_dir` finished with the same model,
  discriminator and settings: a killed run, started again, keeps them instead of labeling them again. A result that
  does not read back or was made with other settings is not kept (it is labeled again and overwritten)."""
  scfg = selection.for_model(scfg, m.cfg, m.tokenizer.has_chat_template)
  want = json.loads(json.dumps({"model": m.cfg.name, "discriminator": disc.name, "config": dataclasses.asdict(lcfg),
                                "selection": dataclasses.asdict(scfg)}))
  done = {}
  for name in names:
    try:
      with open(os.path.join(output_dir, name, "result.json")) as f:
        result = json.load(f)
    except (OSError, ValueError):
      continue
    if isinstance(result, dict) and all(result.get(k) == v for k, v in want.items()):
      done[name] = result
  return done


def p_note(result: dict[str, Any]) -> str:
  """'p=0.93, ': the label's probability in the soft label, for the log; '' when no gradient ran."""
  return "" if result.get("probability") is None else f"p={result['probability']:.2f}, "


def _return_freed_memory() -> None:
  """Hands the heap pages this batch freed back to the OS. glibc keeps them otherwise (XLA's worker threads free into
  several arenas): a launcher run over 26 features grew from 2.2 to 4.0 GB of resident memory while the data it held
  stayed the same."""
  gc.collect()
  try:
    ctypes.CDLL(None).malloc_trim(0)
  except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
    pass


# ----------------------------------------------------------------------------------------------------------------
# 6. The `score` command: given labels measured the same way, no search.


def score_feature(m: LoadedModel, feature: data_lib.Feature, disc: disc_lib.DiscriminatorConfig, labels: list[str],
                  lcfg: opt_lib.LabelConfig, vocab: bool, top_k: int) -> dict:
  """The `score` command's core: given labels' held-out figures and rank by validation loss, the baselines'
  (`baselines.labels`) beside them, unranked; with `vocab` (namer), the exact top of the whole vocabulary by
  validation AUC."""
  # Keys/values only where a label needs them (an ensemble namer, which keeps none, refuses such labels here).
  keep_cache = needs_cache(m, disc, lcfg, selection.SelectConfig(extend_top=0), labels)
  splits = build_splits(m, feature, disc, lcfg, keep_cache)
  out: dict = {"feature": feature.name, "discriminator": disc.name, "labels": {}}
  ids = [disc_lib.encode_label(m.tokenizer, l) for l in labels]
  base = baseline_labels(m, feature, disc, lcfg, keep_cache)
  rows, out["baselines"] = score_with_baselines(m, disc, ids, base, splits)
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
