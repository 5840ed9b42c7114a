"""Probe: does the set namer, used as a *source* of candidates, raise how often the label names the category?

  python experiments/naming/probes/naming_setpool.py --split tune  # probe the tuning half (cached per category)
  python experiments/naming/probes/naming_setpool.py --split tune --analyze
    # compare pools and rules on the saved probe

The coverage rule (tokenlabel_jax/coverage.py) only chooses among candidates of the exact scan (best 24 by validation
loss) and the best 16 by log-rank gap; on the tuning half a name is among them for 87 of 108 categories. The set
namer's own distribution, log P(next | "w1, w2, w3 and w4 are kinds of") over 8 sets of positive words, is already
computed over the whole vocabulary for its signal: its top tokens are the model's guesses at the category's name.
Here each category gets the shipped pool plus the set namer's best `--set_top` word-like tokens, every candidate
with the shipped signals (validation loss, held-out AUC, lrg, typ_all, set_pos), so that pools and rules can be
compared offline, and two less noisy set namers (16 sets; six words a set). The pipeline is the shipped one
(launcher defaults: no gradient run). Result (experiments/results/naming_setpool_tune.md): no variant beats the
shipped rule by more than 2 of 108, after about 20 rules; nothing was changed and the test half was not run.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

from experiments import common  # pylint: disable=g-import-not-at-top


def probe_category(m, disc, mask, feature, spec, set_top: int) -> dict:
  from tokenlabel_jax import coverage, labeling, naming, selection, splits  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import discriminators as disc_lib  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import optimization as opt_lib  # pylint: disable=import-outside-toplevel
  lcfg, scfg = opt_lib.LabelConfig(steps=0), selection.SelectConfig()
  sp = labeling.build_splits(m, feature, disc, lcfg, keep_cache=False)
  logq = np.concatenate([np.asarray(sp[s].prep.logq_BxV) for s in ("train", "val")])
  lrg_V = coverage.log_rank_gap(logq, np.concatenate([sp[s].positive_B for s in ("train", "val")]), mask)
  words = coverage.positive_words(feature, lcfg.threshold)
  set_V = coverage.set_namer(m, coverage.word_sets(words, scfg.set_sets, 0))
  set16_V = coverage.set_namer(m, coverage.word_sets(words, 16, 0))  # twice the sets (the first 8 the same)
  set_k6_V = coverage.set_namer(m, coverage.word_sets(words, 8, 0, k=6))  # six words a set
  cands = selection.gather(m, disc, sp["val"], mask, (), scfg)
  have = {c.ids[0] for c in cands}
  lrg_top = [int(t) for t in np.argsort(-lrg_V)[:16]]
  cands += [selection.Candidate((t,), m.tokenizer.token_str(t), "coverage") for t in lrg_top if t not in have]
  have = {c.ids[0] for c in cands}
  set_top_ids = [int(t) for t in np.argsort(-np.where(mask, set_V, -np.inf))[:set_top]]
  cands += [selection.Candidate((t,), m.tokenizer.token_str(t), "set") for t in set_top_ids if t not in have]
  selection.score(m, disc, cands, sp["val"], sp["heldout"])
  order = sorted(range(len(cands)), key=lambda i: cands[i].stats["val_loss"])
  keep = order[:scfg.coverage_pool] + [i for i in order[scfg.coverage_pool:] if cands[i].source in ("coverage", "set")
                                       or cands[i].ids[0] in set_top_ids]
  kept = [cands[i] for i in keep]
  pos = [e for s in ("val", "train") for e in sp[s].examples if e.positive]
  width = scfg.coverage_pool + 16 + set_top
  padded = kept + kept[-1:] * (width - len(kept))  # one compiled shape
  typ = selection.typicality(m, feature, splits.Split(pos, None, np.ones(len(pos), np.float32)), padded,
                             disc_lib.get(scfg.typical_disc), whole_words=False)
  rows = []
  for c, t in zip(kept, typ):
    tok = c.ids[0]
    rows.append({"label": c.text, "id": tok, "source": c.source, "names": naming.names_category(c.text, spec["names"]),
                 "val_loss": c.stats["val_loss"], "val_auc": c.stats["val_auc"], "auc": c.stats.get("auc"),
                 "lrg": float(lrg_V[tok]), "typ_all": float(t), "set_pos": float(set_V[tok]),
                 "set16": float(set16_V[tok]), "set_k6": float(set_k6_V[tok]),
                 "in_lrg": tok in lrg_top, "set_rank": set_top_ids.index(tok) if tok in set_top_ids else None})
  return {"name": spec["name"], "names": spec["names"], "cands": rows}


def run_probe(split: str, limit: int, set_top: int, data: str, out: str) -> None:
  from absl import logging  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import data as data_lib, discriminators as disc_lib  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.WARNING)
  m = load_model("smollm2-135m-instruct")
  disc = disc_lib.get("namer")
  mask = disc_lib.word_like_mask(m.tokenizer, m.cfg.vocab_size)
  for spec in common.categories(split, data)[:limit or None]:
    path = os.path.join(out, spec["name"] + ".json")
    if os.path.exists(path):
      continue
    t0 = time.time()
    res = probe_category(m, disc, mask, data_lib.load_features(spec["path"])[0], spec, set_top)
    with open(path + ".tmp", "w") as fh:
      json.dump(res, fh)
    os.replace(path + ".tmp", path)
    sets = [r["label"] for r in sorted(res["cands"], key=lambda r: r["set_rank"] if r["set_rank"] is not None
                                       else 99)[:3]]
    print(f"{spec['name']}: set namer's best {sets} ({time.time() - t0:.1f}s)", flush=True)


def _ranks(x):
  return np.argsort(np.argsort(np.asarray(x, float))) / max(len(x) - 1, 1)


def _pool(cands, n_set: int, set_auc: float = 0.0):
  """The shipped pool (best 24 by validation loss, then up to 8 log-rank tokens) and the set namer's best n_set."""
  by_loss = sorted(cands, key=lambda r: r["val_loss"])
  pool = by_loss[:24] + [r for r in by_loss[24:] if r["source"] == "coverage"][:8]
  pool += [r for r in by_loss[24:] if r["set_rank"] is not None and r["set_rank"] < n_set and r not in pool
           and r["val_auc"] >= set_auc]
  return sorted(pool, key=lambda r: r["val_loss"])


def _choose(cands, n_set: int, weights=(1.0, 1.0, 1.0), set_auc: float = 0.0, transform=None,
            keys=("lrg", "typ_all", "set_pos")):
  """The shipped rule over the shipped pool plus the set namer's best `n_set` tokens (those outside the best 24 by
  validation loss, with validation AUC >= set_auc): the highest weighted z-sum of lrg, typ_all, set_pos (or of
  another `transform` of each signal over the pool)."""
  from tokenlabel_jax import coverage  # pylint: disable=import-outside-toplevel
  transform = transform or coverage.zscore
  pool = _pool(cands, n_set, set_auc)
  total = sum(w * transform([r[k] for r in pool]) for k, w in zip(keys, weights))
  return pool[int(np.argmax(total))]


def analyze(split: str, probe_dir: str) -> str:
  cats = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(probe_dir, "*.json")))]
  rules = {"shipped (no set candidates)": lambda cs: _choose(cs, 0)}
  for n in (2, 4, 8):
    rules[f"+ set namer's best {n}"] = lambda cs, n=n: _choose(cs, n)
    rules[f"+ set namer's best {n} with val AUC >= 0.75"] = lambda cs, n=n: _choose(cs, n, set_auc=0.75)
    rules[f"+ set namer's best {n}, set_pos weight 2"] = lambda cs, n=n: _choose(cs, n, (1.0, 1.0, 2.0))
  # The misses' winners mostly lead on lrg (log-rank candidates are picked for it): does taming one signal help?
  from tokenlabel_jax import coverage  # pylint: disable=import-outside-toplevel
  for cap in (1.5, 2.0):
    rules[f"shipped pool, z clipped at +-{cap}"] = lambda cs, cap=cap: _choose(
        cs, 0, transform=lambda x: np.clip(coverage.zscore(x), -cap, cap))
  rules["shipped pool, sum of ranks instead of z"] = lambda cs: _choose(cs, 0, transform=_ranks)
  for w in ((0.5, 1.0, 1.0), (1.0, 1.5, 1.5)):
    rules[f"shipped pool, weights lrg/typ_all/set_pos {w}"] = lambda cs, w=w: _choose(cs, 0, w)
  # A less noisy set namer: 16 sets instead of 8, or six words a set instead of four.
  for key in ("set16", "set_k6"):
    rules[f"shipped pool, {key} for set_pos"] = lambda cs, key=key: _choose(cs, 0, keys=("lrg", "typ_all", key))
    rules[f"+ set namer's best 8, {key} for set_pos"] = lambda cs, key=key: _choose(cs, 8, keys=("lrg", "typ_all", key))
  rules["set namer's first token (no discrimination)"] = lambda cs: min(
      [r for r in cs if r["set_rank"] is not None], key=lambda r: r["set_rank"])
  table = []
  for name, rule in rules.items():
    chosen = [rule(c["cands"]) for c in cats]
    table.append({"rule": name, "names": sum(r["names"] for r in chosen), "of": len(cats),
                  "median heldout AUC": float(np.median([r["auc"] for r in chosen if r["auc"] is not None]))})
  ceiling = {f"a name in the shipped pool{f' + set namer best {n}' if n else ''}": sum(
      any(r["names"] for r in _pool(c["cands"], n)) for c in cats) for n in (0, 8)}
  for n in (1, 2, 4, 8):
    ceiling[f"a name among the set namer's best {n}"] = sum(
        any(r["names"] for r in c["cands"] if r["set_rank"] is not None and r["set_rank"] < n) for c in cats)
  notes = "Ceiling: " + "; ".join(f"{k}: {v}" for k, v in ceiling.items())
  md = common.write_table(f"naming_setpool_{split}", table, ["rule", "names", "of", "median heldout AUC"],
                          f"The set namer as a source of candidates, {split} half ({len(cats)} categories)", notes,
                          command=f"python experiments/naming/probes/naming_setpool.py --split {split} --analyze",
                          summary={"ceiling": ceiling, "categories": len(cats)})
  print(md)
  return md


if __name__ == "__main__":
  import argparse
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--split", default="tune")
  ap.add_argument("--limit", type=int, default=0)
  ap.add_argument("--set_top", type=int, default=8)
  ap.add_argument("--data", default=os.path.join(common.DATA, "benchmark"))
  ap.add_argument("--analyze", action="store_true")
  a = ap.parse_args()
  out_dir = os.path.join(common.HERE, "runs", "naming_setpool", a.split)
  os.makedirs(out_dir, exist_ok=True)
  if a.analyze:
    analyze(a.split, out_dir)
  else:
    run_probe(a.split, a.limit, a.set_top, a.data, out_dir)
