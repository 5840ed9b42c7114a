"""Probe: with a wider candidate pool and several signals per candidate, which choice rule names the category?

  python experiments/naming/probes/naming_pool.py --split tune  # probe the tuning half (cached per category)
  python experiments/naming/probes/naming_pool.py --split tune --analyze    # compare rules on the saved probe
  python experiments/naming/probes/naming_pool.py --split concepts
    # the 26 concepts and the paper's four (tuned on before)

Fixed on the tune half (108 categories; experiments/results/naming_pool_tune.md) and shipped as the coverage rule
(tokenlabel_jax/coverage.py): among the best 32 by validation loss, the highest z-sum of lrg + typ_all + set_pos:
57 of 108 against the exact scan's 39. The test half is measured with the shipped pipeline
(experiments/naming/naming_benchmark.py), not with this probe.

Per category, the shipped candidate pool (the namer's exact vocabulary scan: best 48 by calibrated validation loss,
16 most natural) plus the best 16 by the namer's log-rank gap (naming_votes.py), every candidate exactly scored.
The best `--pool` by validation loss and the log-rank ones then get:
  typ_pos   the shipped typicality: mean over positive validation words of
            log P(word | "Examples of<label>:") - log P(word | "Examples of things:")
  typ_neg   the same over the negative validation words (a broad or generic label raises every word)
  typ_all   typ_pos over the positive words of the training and validation examples (more words, less noise)
  typ_first typ_pos reading only each word's first token (typ_neg and typ_all do too: no pass per word)
  lrg       the namer's log-rank gap (mean over negatives minus mean over positives of log(1 + rank))
  set_pos   mean log P(label | "w1, w2, w3 and w4 are kinds of") over 8 sets of positive training words
  set_neg   the same over sets of negative words (the tune half's cached probes drew these from the generator
            that drew the positive sets; set_neg is in no chosen rule)
Probes are saved per category under experiments/runs/naming_pool/<split>/; --analyze only reads them.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

from experiments import common  # pylint: disable=g-import-not-at-top


def _words(examples, positive: bool):
  """The positive (or negative) examples as a split whose every example counts as positive: what
  selection.typicality reads."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import splits  # pylint: disable=import-outside-toplevel
  chosen = [dataclasses.replace(e, positive=True) for e in examples if bool(e.positive) == positive]
  return splits.Split(chosen, None, np.ones(len(chosen), np.float32))


def _negative_words(feature) -> list[str]:
  return sorted({tok.strip().lower() for r in feature.records if r.split == "train"
                 for tok, a in zip(r.tokens, r.activations) if tok.strip().isalpha() and a <= 0})


def probe_category(m, disc, lik, mask, feature, spec, pool: int) -> dict:
  from tokenlabel_jax import coverage, labeling, naming, selection  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import optimization as opt_lib  # pylint: disable=import-outside-toplevel
  sp = labeling.build_splits(m, feature, disc, opt_lib.LabelConfig())
  logq = np.concatenate([np.asarray(sp[s].prep.logq_BxV) for s in ("train", "val")])
  pos = np.concatenate([sp[s].positive_B for s in ("train", "val")])
  lrg_V = coverage.log_rank_gap(logq, pos, mask)
  cands = selection.gather(m, disc, sp["val"], mask, (), selection.SelectConfig())
  have = {c.ids[0] for c in cands}
  cands += [selection.Candidate((int(t),), m.tokenizer.token_str(int(t)), "lrg") for t in np.argsort(-lrg_V)[:16]
            if int(t) not in have]
  selection.score(m, disc, cands, sp["val"], sp["heldout"])
  order = sorted(range(len(cands)), key=lambda i: cands[i].stats["val_loss"])
  keep = order[:pool] + [i for i in order[pool:] if cands[i].source == "lrg"][:8]
  top = [cands[i] for i in keep]
  n_top = len(top)
  top += top[-1:] * (32 - n_top)  # one compiled shape for every category (the repeats' figures are dropped)
  val_ex = sp["val"].examples
  val_pos, val_neg = _words(val_ex, True), _words(val_ex, False)
  every_pos = _words(val_ex + sp["train"].examples, True)
  typ_pos = selection.typicality(m, feature, val_pos, top, lik)
  typ_neg = selection.typicality(m, feature, val_neg, top, lik, whole_words=False)
  typ_all = selection.typicality(m, feature, every_pos, top, lik, whole_words=False)
  typ_first = selection.typicality(m, feature, val_pos, top, lik, whole_words=False)
  lp = coverage.set_namer(m, coverage.word_sets(coverage.positive_words(feature), 8, seed=0))
  ln = coverage.set_namer(m, coverage.word_sets(_negative_words(feature), 8, seed=1))
  rows = []
  for c, tp, tn, ta, tf in zip(top[:n_top], typ_pos, typ_neg, typ_all, typ_first):
    t = c.ids[0]
    rows.append({"label": c.text, "ids": list(c.ids), "source": c.source,
                 "names": naming.names_category(c.text, spec["names"]),
                 "val_loss": c.stats["val_loss"], "val_auc": c.stats["val_auc"], "auc": c.stats.get("auc"),
                 "naturalness": c.stats["naturalness"], "typ_pos": float(tp), "typ_neg": float(tn),
                 "typ_all": float(ta), "typ_first": float(tf), "lrg": float(lrg_V[t]),
                 "set_pos": float(lp[t]), "set_neg": float(ln[t])})
  return {"name": spec["name"], "names": spec["names"], "n_pos_val": int(sp["val"].positive_B.sum()),
          "name_in_vocab_scan": bool(any(r["names"] for r in rows)), "cands": rows}


def run_probe(split: str, limit: int, pool: int, data: str, out: str) -> None:
  from absl import logging  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import data as data_lib, discriminators as disc_lib  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.WARNING)
  m = load_model("smollm2-135m-instruct")
  disc, lik = disc_lib.get("namer"), disc_lib.get("likelihood")
  mask = disc_lib.word_like_mask(m.tokenizer, m.cfg.vocab_size)
  for spec in common.categories(split, data)[:limit or None]:
    path = os.path.join(out, spec["name"] + ".json")
    if os.path.exists(path):
      continue
    t0 = time.time()
    f = data_lib.load_features(spec["path"])[0]
    res = probe_category(m, disc, lik, mask, f, spec, pool)
    with open(path + ".tmp", "w") as fh:
      json.dump(res, fh)
    os.replace(path + ".tmp", path)
    best = min(res["cands"], key=lambda r: r["val_loss"])
    print(f"{spec['name']}: scan {best['label']!r} ({time.time() - t0:.1f}s)", flush=True)


if __name__ == "__main__":
  import argparse
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--split", default="tune")
  ap.add_argument("--limit", type=int, default=0)
  ap.add_argument("--pool", type=int, default=24)
  ap.add_argument("--data", default=os.path.join(common.DATA, "benchmark"))
  ap.add_argument("--out", default=None)
  ap.add_argument("--analyze", action="store_true")
  a = ap.parse_args()
  out_dir = a.out or os.path.join(common.HERE, "runs", "naming_pool", a.split)
  os.makedirs(out_dir, exist_ok=True)
  if a.analyze:
    from experiments.naming.probes import naming_pool_rules  # pylint: disable=g-import-not-at-top
    naming_pool_rules.analyze(a.split, out_dir)
  else:
    run_probe(a.split, a.limit, a.pool, a.data, out_dir)
