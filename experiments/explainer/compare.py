"""The comparison: our labels, the LLM explainer's, and the two combined, on the same model and examples.

  python experiments/explainer/compare.py --model qwen2.5-coder-1.5b --set paper
  python experiments/explainer/compare.py --model qwen2.5-coder-1.5b --set concepts
  python experiments/explainer/compare.py --model qwen2.5-coder-1.5b --set test [--limit N] [--scorer ""]

A run that was stopped resumes: the features already in its result file (same set, model and scorer) are kept and
not recomputed (--restart starts over), so the test half's 2.6 hours on a 2-core CPU can span sessions.

Per feature, in one process (prompt passes and the explainer's answers are computed once and shared):
  ours         `label`'s default (the namer's exact scan and the model's rule)
  explainer    the explainer alone (tokenlabel_jax.explain): its first usable answer, greedy
  combined     `label --propose_with=explainer`: the explainer's 4 answers (1 greedy, 3 sampled) join our candidates
  top token    the most frequent token at the peaks of the strongest training records
  exact scan   the single word-like token with the lowest calibrated validation loss
Figures: names the category (tokenlabel_jax.naming's judge: the benchmark's names, experiments/concepts.json's, or
the paper's), held-out AUC under the namer (the discriminator ours was chosen with) and under the independent scorer
(--scorer, likelihood by default: no method was optimized against it), the share at AUC >= 0.8, time per feature.
Rules fixed before the run (experiments/explainer/README.md); the test half is never tuned on.
Writes experiments/results/explainer_<set>_<model>.{md,json}.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top

METHODS = ("ours", "explainer", "combined", "top token", "exact scan")


def features_and_names(which: str, data: str):
  from tokenlabel_jax import data as data_lib  # pylint: disable=import-outside-toplevel
  if which == "paper":
    return [common.feature(n) for n in common.PAPER_FEATURES], dict(common.PAPER)
  if which == "concepts":
    spec = json.load(open(os.path.join(common.HERE, "concepts.json")))["concepts"]
    names = {c["name"]: [c["concept_word"], c["name"].replace("_", " "), *c["synonyms"]] for c in spec}
    return [data_lib.load_features(os.path.join(common.DATA, "concepts", c["name"] + ".jsonl"))[0] for c in spec], names
  cats = common.categories(which, data)
  return [data_lib.load_features(c["path"])[0] for c in cats], {c["name"]: c["names"] for c in cats}


def main():
  args, m, disc = common.setup("explainer_compare", __doc__, launcher_steps=True, **{
      "--set": dict(default="paper", help="paper | concepts | test | tune"), "--limit": dict(type=int, default=0),
      "--scorer": dict(default="likelihood", help="independent scorer ('' for none)"),
      "--restart": dict(action="store_true", help="ignore the rows of an earlier run of the same set and model"),
      "--data": dict(default=os.path.join(common.DATA, "benchmark"))})
  from tokenlabel_jax import (  # pylint: disable=import-outside-toplevel
      discriminators as disc_lib, explainer, explaining)
  from tokenlabel_jax import baselines, labeling, naming, selection  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=import-outside-toplevel
  features, names = features_and_names(args.set, args.data)
  features = features[:args.limit or None]
  lcfg = LabelConfig(steps=args.steps)
  scfg = selection.for_model(selection.SelectConfig(), m.cfg)
  combined_scfg = selection.for_model(selection.SelectConfig(propose_with="explainer", proposals=4), m.cfg)
  ecfg = explainer.ExplainConfig(samples=4)  # the same four answers the combination decodes (remembered)
  scorer = disc_lib.get(args.scorer) if args.scorer else None
  out = os.path.join(args.out, f"{args.set}_{m.cfg.name}")
  names_here = {f.name for f in features}
  earlier = [] if args.restart else common.earlier_run(
      result_name(args, m), {"set": args.set, "model": m.cfg.name, "scorer": args.scorer})[0]
  rows, t0 = [r for r in earlier if r["feature"] in names_here], time.time()
  done = {r["feature"] for r in rows}
  if done:
    print(f"resuming: {len(done)} of {len(features)} features already in the result file", flush=True)
  todo = [f for f in features if f.name not in done]
  for start in range(0, len(todo), 4):
    group = todo[start:start + 4]
    t = time.time()
    ours = labeling.label_features(m, group, disc, lcfg, os.path.join(out, "ours"), (), True, None, scfg, plots=False)
    t_ours = (time.time() - t) / len(group)
    t = time.time()
    expl = explaining.aligned(explaining.explain_features(m, group, disc, lcfg, ecfg, os.path.join(out, "explainer"),
                                                          per_batch=4), group)
    t_expl = (time.time() - t) / len(group)
    t = time.time()
    comb = labeling.label_features(m, group, disc, lcfg, os.path.join(out, "combined"), (), True, None, combined_scfg,
                                   plots=False)
    t_comb = (time.time() - t) / len(group) + t_expl  # the combination pays for the explainer's answers too
    for f, o, e, c in zip(group, ours, expl, comb):
      e = e or {"best_candidate": None, "explainer": {"status": "error", "proposals": []}}  # its error line is above
      scan = min((v for v in o["verification"] if len(v["token_ids"]) == 1), key=lambda v: v["val_loss"])
      labels = {"ours": o["best_candidate"], "explainer": e["best_candidate"], "combined": c["best_candidate"],
                "top token": baselines.top_token(f, lcfg.threshold), "exact scan": scan["label"]}
      ids = {k: disc_lib.encode_label(m.tokenizer, v) for k, v in labels.items() if v}
      keep_cache = any(len(i) > 1 for i in ids.values())
      sp = labeling.build_splits(m, f, disc, dataclasses.replace(lcfg, n_train=0), keep_cache)
      namer_rows = dict(zip(ids, labeling.evaluate_labels(m, disc, list(ids.values()), sp["val"], sp["heldout"])))
      scored = (labeling.independent_scores(m, f, scorer, lcfg, list(ids.values()), list(ids)) if scorer else {})
      row = {"feature": f.name, "t ours s": round(t_ours, 1), "t explainer s": round(t_expl, 1),
             "t combined s": round(t_comb, 1), "combined source": c["source"],
             "explainer status": e["explainer"]["status"], "explainer answers": e["explainer"]["proposals"]}
      for k in METHODS:
        row[f"{k} label"] = labels[k]
        row[f"{k} names"] = naming.names_category(labels[k], names[f.name])
        row[f"{k} AUC"] = namer_rows[k]["auc"] if k in namer_rows else float("nan")
        row[f"{k} scorer AUC"] = scored.get(k, {}).get("auc", float("nan")) if k in ids else float("nan")
      rows.append(row)
    print(f"{len(rows)}/{len(features)} features, {time.time() - t0:.0f}s: names "
          + ", ".join(f"{k} {sum(r[f'{k} names'] for r in rows)}" for k in METHODS), flush=True)
    write(args, m, rows, len(features))


def result_name(args, m) -> str:
  return f"explainer_{args.set}_{m.cfg.name}"


def write(args, m, rows, total: int) -> None:
  n = len(rows)
  summary = {"set": args.set, "model": m.cfg.name, "features": n, "scorer": args.scorer}
  for k in METHODS:
    aucs = [r[f"{k} AUC"] for r in rows]
    summary[k] = {"names": sum(r[f"{k} names"] for r in rows),
                  "median_heldout_auc": float(np.nanmedian(aucs)),
                  "share_auc_ge_0.8": float(np.mean([a >= 0.8 for a in aucs if np.isfinite(a)])),
                  "median_scorer_auc": float(np.nanmedian([r[f"{k} scorer AUC"] for r in rows]))
                  if args.scorer else None}
  for k in ("ours", "explainer", "combined"):
    summary[k]["seconds_per_feature"] = float(np.mean([r[f"t {k} s"] for r in rows]))
  best_parent = max(summary["ours"]["names"], summary["explainer"]["names"])
  notes = (f"{'Partial: ' + str(n) + ' of ' + str(total) + '. ' if n < total else ''}Names the category: "
           + ", ".join(f"{k} **{summary[k]['names']}**" for k in METHODS) + f" of {n}. Median held-out AUC (namer): "
           + ", ".join(f"{k} {summary[k]['median_heldout_auc']:.3f}" for k in METHODS)
           + (". Independent scorer (" + args.scorer + "): " + ", ".join(
               f"{k} {summary[k]['median_scorer_auc']:.3f}" for k in METHODS) if args.scorer else "")
           + f". The combination against the better parent: {summary['combined']['names'] - best_parent:+d}.")
  cols = ["feature"] + [f"{k} {x}" for k in ("ours", "explainer", "combined") for x in ("label", "names", "AUC")] + [
      "top token label", "exact scan label", "combined source", "explainer status"]
  common.write_table(result_name(args, m), rows, cols,
                     f"Our labels, the LLM explainer's and both combined ({args.set}, {m.cfg.name})", notes,
                     summary=summary)


if __name__ == "__main__":
  main()
