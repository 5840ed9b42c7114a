"""Probe: which rule over the namer's whole next-token distribution picks the category's name?

  python experiments/naming/probes/naming_votes.py --split tune
    # cache the namer's log P(label | word) and compare rules

The namer's score of a one-token label is log P(label | "... <word> is a kind of"): one model pass per example gives
it for every label in the vocabulary. The shipped choice ranks labels by calibrated validation loss, i.e. by how
well they *separate* positives from random words, which a member word does as well as the category's name. Rules
compared here also ask how a label *covers* the positives: e.g. the share of positives whose likeliest continuations
(top k) contain the label, minus the same share on the negatives ("votes"), which a member word only wins on the
few positives like itself. Rules use the training + validation examples only; the held-out AUC is reported for the
chosen label.

Tune half (experiments/results/naming_votes_tune.md): the shipped scan's rule (lowest calibrated validation loss)
names 39 of 108; the best rule there, fixed before the test half was run, is the log-rank gap (mean over negatives
minus mean over positives of log(1 + the label's rank in the example's next-token distribution)): 43 of 108. Every
other rule named fewer than the scan. The test half's run (naming_votes_test.md) measures that one comparison.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import data as data_lib, discriminators as disc_lib, evaluation, labeling, naming
from tokenlabel_jax import optimization as opt_lib


def cache_category(m, disc, feature, words, path):
  if os.path.exists(path):
    z = np.load(path)
    return {k: z[k] for k in z.files}
  sp = labeling.build_splits(m, feature, disc, opt_lib.LabelConfig())
  out = {}
  for name in ("train", "val", "heldout"):
    s = sp[name]
    logq = np.asarray(s.prep.logq_BxV)[:, words]
    out[name + "_logq"] = logq.astype(np.float16)
    out[name + "_pos"] = np.asarray(s.positive_B)
  np.savez(path, **out)
  return out


def ranks(logq_BxW):
  """Rank of every label in each example's distribution (0 = likeliest)."""
  order = np.argsort(-logq_BxW, axis=1)
  r = np.empty_like(order)
  np.put_along_axis(r, order, np.arange(logq_BxW.shape[1])[None], axis=1)
  return r


def rules(d, cap):
  """Scores of every word-like label under each rule (higher is better), from train + validation examples."""
  logq = np.concatenate([d["train_logq"], d["val_logq"]]).astype(np.float32)
  pos = np.concatenate([d["train_pos"], d["val_pos"]])
  val_logq, val_pos = d["val_logq"].astype(np.float32), d["val_pos"]
  r = ranks(logq)
  out = {}
  a, b, loss = opt_lib.fit_calibration(val_logq.T, val_pos.astype(np.float32), cap)
  out["val_loss (shipped scan)"] = -loss
  for k in (3, 10, 30, 100):
    out[f"votes@{k}"] = (r[pos] < k).mean(0) - (r[~pos] < k).mean(0)
  out["mean pos - logmeanexp neg"] = logq[pos].mean(0) - (np.logaddexp.reduce(logq[~pos], 0) - np.log((~pos).sum()))
  out["q25 pos - q75 neg"] = np.quantile(logq[pos], 0.25, 0) - np.quantile(logq[~pos], 0.75, 0)
  out["mean pos - mean neg"] = logq[pos].mean(0) - logq[~pos].mean(0)
  out["mean log-rank pos"] = -np.log1p(r[pos]).mean(0)
  out["mean pos logq"] = logq[pos].mean(0)
  lr_pos, lr_neg = np.log1p(r[pos]).mean(0), np.log1p(r[~pos]).mean(0)
  out["log-rank gap"] = lr_neg - lr_pos
  for c in (3, 10, 30, 100):
    out[f"log-rank gap c={c}"] = np.log(c + r[~pos]).mean(0) - np.log(c + r[pos]).mean(0)
  def borda(*scores):
    return -sum(np.argsort(np.argsort(-s)) for s in scores).astype(np.float64)
  out["borda(val_loss, log-rank gap)"] = borda(out["val_loss (shipped scan)"], out["log-rank gap"])
  out["borda(val_loss, log-rank gap c=10)"] = borda(out["val_loss (shipped scan)"], out["log-rank gap c=10"])
  return out


def main():
  args, m, disc = common.setup("naming_votes", __doc__, **{
      "--split": dict(default="tune"), "--limit": dict(type=int, default=0),
      "--data": dict(default=os.path.join(common.DATA, "benchmark")),
      "--cache": dict(default=os.path.join(common.HERE, "runs", "naming_votes_cache"))})
  spec = json.load(open(os.path.join(common.HERE, "naming", "categories.json")))["categories"]
  cats = [c for c in spec if c["split"] == args.split][:args.limit or None]
  mask = disc_lib.word_like_mask(m.tokenizer, m.cfg.vocab_size)
  words = np.flatnonzero(mask)
  text = [m.tokenizer.token_str(int(t)) for t in words]
  os.makedirs(args.cache, exist_ok=True)
  rows, hits, t0 = [], {}, time.time()
  for i, c in enumerate(cats):
    f = data_lib.load_features(os.path.join(args.data, c["name"] + ".jsonl"))[0]
    d = cache_category(m, disc, f, words, os.path.join(args.cache, c["name"] + ".npz"))
    named = np.array([naming.names_category(s, c["names"]) for s in text])
    row = {"category": c["name"], "name tokens": int(named.sum())}
    for rule, sc in rules(d, disc.max_scale if disc.calibrate else None).items():
      best = int(np.argmax(sc))
      order = np.argsort(-sc)
      row[rule] = text[best]
      row[rule + " names"] = bool(named[best])
      row[rule + " name rank"] = int(np.flatnonzero(named[order])[0]) if named.any() else -1
      hl, hp = d["heldout_logq"].astype(np.float32), d["heldout_pos"]
      row[rule + " heldout AUC"] = float(evaluation.metrics_from_scores(hl[:, best], hp)["auc"])
      hits[rule] = hits.get(rule, 0) + row[rule + " names"]
    rows.append(row)
    print(f"{i + 1}/{len(cats)} {time.time() - t0:.0f}s {c['name']}: " +
          ", ".join(f"{k}={row[k]!r}" for k in list(row)[2::4][:6]), flush=True)
  n = len(rows)
  summary = {"split": args.split, "categories": n, "with a one-token name": sum(r["name tokens"] > 0 for r in rows),
             "named": {k: v for k, v in hits.items()},
             "median name rank": {k: float(np.median([r[k + " name rank"] for r in rows if r["name tokens"]]))
                                  for k in hits},
             "median heldout AUC": {k: float(np.median([r[k + " heldout AUC"] for r in rows])) for k in hits}}
  print(json.dumps(summary, indent=1))
  lines = [f"| rule | names the category (of {n}) | median rank of the best name token | median held-out AUC |",
           "|---|---|---|---|"]
  for k in hits:
    lines.append(f"| {k} | {hits[k]} | {summary['median name rank'][k]:.0f} | {summary['median heldout AUC'][k]:.3f} |")
  common.write_table(f"naming_votes_{args.split}", rows, ["category", "name tokens"] +
                     [f"{k}" for k in hits] + [f"{k} names" for k in hits],
                     f"Rules over the namer's next-token distribution, {args.split} half ({n} categories)",
                     "\n".join(lines), summary=summary)


if __name__ == "__main__":
  main()
