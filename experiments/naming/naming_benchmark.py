"""The naming benchmark: does the label name the category? On one half of experiments/naming/categories.json
(--split tune | test), or on the fresh set (--split fresh: categories_fresh.json, declared after the tuning).

  python scripts/make_benchmark.py                       # the records (about 15 min; needs scripts/install_corpora.sh)
  python experiments/naming/naming_benchmark.py --split test  # label every test category, judge, compare with baselines

Each category is labeled as the README's command labels a feature (default settings, features four at a time) and
judged automatically (tokenlabel_jax.naming): a label counts when it is one of the category's names or an inflection
of one. Beside it, on the same examples: the exact vocabulary scan (the single word-like token with the lowest
calibrated validation loss, no gradient, no choice rule) and a random word-like token. Held-out AUC comes from the
namer (optimized against) and, with --scorer, from an independent discriminator. Settings were chosen on the
"tune" half only; report the "test" half.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import data as data_lib, discriminators as disc_lib, labeling, naming, selection, splits
from tokenlabel_jax.optimization import LabelConfig


def main():
  args, m, disc = common.setup("naming", __doc__, launcher_steps=True, **{
      "--split": dict(default="test"), "--limit": dict(type=int, default=0),
      "--scorer": dict(default="likelihood"), "--margin": dict(type=float, default=selection.SelectConfig().margin),
      "--extend_top": dict(type=int, default=selection.SelectConfig().extend_top),
      "--rule": dict(default="", help="coverage | set_namer | ask | typicality (default: the model's, "
                                      "selection.default_rule)"),
      "--data": dict(default=os.path.join(common.DATA, "benchmark")), "--tag": dict(default=""),
      "--restart": dict(action="store_true", help="ignore a partial result of the same run instead of resuming it")})
  cats = common.categories(args.split, args.data)[:args.limit or None]
  lcfg = LabelConfig(steps=args.steps)
  scfg = selection.for_model(selection.SelectConfig(margin=args.margin, extend_top=args.extend_top, rule=args.rule),
                             m.cfg, m.tokenizer.has_chat_template)
  args.rule = scfg.rule
  scorer = disc_lib.get(args.scorer) if args.scorer else None
  mask = disc_lib.word_like_mask(m.tokenizer, m.cfg.vocab_size)
  words = np.flatnonzero(mask)
  out_dir = os.path.join(args.out, args.split + args.tag)
  rows, t0 = [], time.time()
  if not args.restart:
    rows, wall_s = _partial(args, cats)
    t0 -= wall_s
  for start in range(len(rows), len(cats), 4):
    group = cats[start:start + 4]
    features = [data_lib.load_features(c["path"])[0] for c in group]
    results = labeling.label_features(m, features, disc, lcfg, out_dir, (), True, None, scfg, scorer)
    for c, f, r in zip(group, features, results):
      scan = min((v for v in r["verification"] if len(v["token_ids"]) == 1), key=lambda v: v["val_loss"])
      rng = np.random.default_rng(int.from_bytes(c["synset"].encode()[:4], "little"))
      rand = [int(rng.choice(words))]
      sp = labeling.build_splits(m, f, disc, LabelConfig(n_train=0),  # one-token baseline: the namer needs log q only
                                 labeling.needs_cache(m, disc, lcfg, selection.SelectConfig(extend_top=0), ()))
      rand_row = splits.evaluate_labels(m, disc, [rand], sp["val"], sp["heldout"])[0]
      top = r["baselines"].get("top_token", {})  # the run's own baseline, on the label's held-out examples
      top_s = r.get("scorer", {}).get("baselines", {}).get("top_token", {})
      rows.append({
          "category": c["name"], "synset": c["synset"], "label": r["label"], "best_candidate": r["best_candidate"],
          "names": naming.names_category(r["label"], c["names"]), "heldout AUC": r["heldout"]["auc"],
          "scorer AUC": r.get("scorer", {}).get("label", {}).get("auc", float("nan")),
          "source": r["source"],
          "scan label": scan["label"], "scan names": naming.names_category(scan["label"], c["names"]),
          "scan AUC": scan["auc"], "random label": m.tokenizer.token_str(rand[0]), "random AUC": rand_row["auc"],
          "top label": top.get("label"), "top names": naming.names_category(top.get("label"), c["names"]),
          "top AUC": top.get("auc", float("nan")), "top scorer AUC": top_s.get("auc", float("nan")),
          "wall s": r["wall_time_s"]})
    done = len(rows)
    rate = sum(r["names"] for r in rows) / done
    print(f"{done}/{len(cats)} categories, {time.time() - t0:.0f}s: names the category {rate:.0%} "
          f"(scan {sum(r['scan names'] for r in rows) / done:.0%})", flush=True)
    _write(args, rows, t0, len(cats))


def _partial(args, cats) -> tuple[list[dict], float]:
  """The rows and wall time of an earlier, cut run with the same settings (its categories a prefix of ours): a run of
  two hours resumes where it stopped instead of starting over."""
  name = f"naming_{args.split}{args.tag}"
  rows, summary = common.earlier_run(name, {k: getattr(args, k) for k in ("rule", "scorer", "margin", "extend_top")})
  if [r["category"] for r in rows] != [c["name"] for c in cats[:len(rows)]] or len(rows) % 4:
    return [], 0.0
  if rows:
    print(f"resuming {name}: {len(rows)} of {len(cats)} categories done (--restart to start over)", flush=True)
  return rows, float(summary.get("wall_s", 0.0))


def _write(args, rows, t0, total):
  n = len(rows)
  summary = {
      "split": args.split, "categories": n,
      "names_category": sum(r["names"] for r in rows), "rate": sum(r["names"] for r in rows) / n,
      "scan_names_category": sum(r["scan names"] for r in rows), "scan_rate": sum(r["scan names"] for r in rows) / n,
      "median_heldout_auc": float(np.nanmedian([r["heldout AUC"] if r["label"] else np.nan for r in rows])),
      "median_heldout_auc_all": float(np.nanmedian([r["heldout AUC"] for r in rows])),
      "median_scorer_auc": float(np.nanmedian([r["scorer AUC"] for r in rows])),
      "median_scan_auc": float(np.nanmedian([r["scan AUC"] for r in rows])),
      "median_random_auc": float(np.nanmedian([r["random AUC"] for r in rows])),
      # The top-activating token (tokenlabel_jax.baselines), under the namer and under the scorer; rows of runs made
      # before it was recorded have none.
      "top_names_category": sum(bool(r.get("top names")) for r in rows),
      "median_top_auc": float(np.nanmedian([r.get("top AUC", np.nan) for r in rows])),
      "median_top_scorer_auc": float(np.nanmedian([r.get("top scorer AUC", np.nan) for r in rows])),
      "label_above_top": sum(r["heldout AUC"] > r.get("top AUC", np.inf) for r in rows),
      "label_above_top_scorer": sum(r["scorer AUC"] > r.get("top scorer AUC", np.inf) for r in rows),
      "label_is_top": sum(naming.normalize(r["best_candidate"] or "") == naming.normalize(r.get("top label") or "-")
                          for r in rows),
      "no_label": sum(r["label"] is None for r in rows),
      "wall_s": round(time.time() - t0, 1), "margin": args.margin, "extend_top": args.extend_top, "rule": args.rule,
      "scorer": args.scorer, "typical_top": selection.SelectConfig().typical_top}
  notes = (f"**{summary['names_category']} of {n}** labels name the category ({summary['rate']:.0%}); the exact "
           f"vocabulary scan names it for {summary['scan_names_category']} ({summary['scan_rate']:.0%}). Median "
           f"held-out AUC (namer) {summary['median_heldout_auc_all']:.3f}, independent scorer ({args.scorer}) "
           f"{summary['median_scorer_auc']:.3f}; scan {summary['median_scan_auc']:.3f}; random word "
           f"{summary['median_random_auc']:.3f}. No label (not above chance): {summary['no_label']}.")
  if any("top AUC" in r for r in rows):
    notes += (f" The top-activating token names the category for {summary['top_names_category']}; its median held-out"
              f" AUC is {summary['median_top_auc']:.3f} (namer) and {summary['median_top_scorer_auc']:.3f} (scorer);"
              f" the label (or best candidate) is above it for {summary['label_above_top']} of {n} under the namer"
              f" and {summary['label_above_top_scorer']} under the scorer, and is the top token itself for"
              f" {summary['label_is_top']}.")
  if n < total:
    notes = f"Partial: {n} of {total} categories so far. " + notes
  common.write_table(f"naming_{args.split}{args.tag}", rows,
                     ["category", "label", "names", "heldout AUC", "scorer AUC", "source", "scan label", "scan names",
                      "scan AUC", "random label", "random AUC", "top label", "top names", "top AUC",
                      "top scorer AUC"],
                     f"Naming benchmark, {args.split} {'set' if args.split == 'fresh' else 'half'} ({n} WordNet "
                     "categories)", notes, summary=summary)


if __name__ == "__main__":
  main()
