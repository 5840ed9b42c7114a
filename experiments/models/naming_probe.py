"""Probe: on a stronger discriminator, which choice rule names the category? Statistics saved per category so that
rules can be compared offline, on the tuning half only.

  python experiments/models/naming_probe.py --model qwen2.5-coder-1.5b --split tune
  python experiments/models/naming_probe.py --model qwen2.5-coder-1.5b --split tune --analyze

Per category (the benchmark's features, default example counts): the shipped pipeline's label (coverage rule, as
`label` chooses it) and, for the best 300 word-like tokens by AUC on the training + validation examples (and the
category's own names), every figure a simple rule could use: AUC and naturalness (the positives' mean log q at the
slot) on validation alone and on training + validation, the calibrated validation loss, the held-out AUC, and
whether the token names the category. Saved to experiments/runs/models_probe/<model>_<split>.json (rewritten as it
goes; a killed probe resumes).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top

TOP = 300


def probe_category(m, disc, mask, feature, cat, out_dir) -> dict:
  from tokenlabel_jax import evaluation, labeling, naming  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import discriminators as disc_lib  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import optimization as opt_lib  # pylint: disable=import-outside-toplevel
  lcfg = opt_lib.LabelConfig(steps=0)
  shipped = labeling.label_features(m, [feature], disc, lcfg, out_dir, (), True, None, plots=False)[0]
  sp = labeling.build_splits(m, feature, disc, lcfg, keep_cache=False)  # the same prompts: from the memo
  lq = {s: np.asarray(sp[s].prep.logq_BxV) for s in ("train", "val", "heldout")}
  pos = {s: sp[s].positive_B for s in ("train", "val", "heldout")}
  trv, trv_pos = np.concatenate([lq["train"], lq["val"]]), np.concatenate([pos["train"], pos["val"]])
  auc_trv = evaluation.vocab_auc(trv, trv_pos, mask)
  name_ids = {n: disc_lib.encode_label(m.tokenizer, n) for n in cat["names"]}
  own = [ids[0] for ids in name_ids.values() if len(ids) == 1]
  keep = np.union1d(np.argsort(-np.nan_to_num(auc_trv, nan=-1))[:TOP], np.asarray(own, int))
  auc_val = evaluation.vocab_auc(lq["val"][:, keep], pos["val"], np.ones(len(keep), bool))
  auc_ho = evaluation.vocab_auc(lq["heldout"][:, keep], pos["heldout"], np.ones(len(keep), bool))
  loss = opt_lib.fit_calibration(lq["val"][:, keep].T, sp["val"].target_B, disc.max_scale)[2]
  tokens = []
  for j, t in enumerate(keep):
    text = m.tokenizer.token_str(int(t))
    tokens.append({"id": int(t), "label": text, "names": naming.names_category(text, cat["names"]),
                   "word_like": bool(mask[t]), "auc_trv": float(auc_trv[t]), "auc_val": float(auc_val[j]),
                   "auc_heldout": float(auc_ho[j]), "nat_trv": float(trv[trv_pos][:, t].mean()),
                   "nat_val": float(lq["val"][pos["val"]][:, t].mean()), "val_loss": float(loss[j])})
  return {"name": cat["name"], "synset": cat["synset"], "names": cat["names"],
          "name_tokens": {n: [m.tokenizer.token_str(i) for i in ids] for n, ids in name_ids.items()},
          "shipped": {"label": shipped["best_candidate"], "names": naming.names_category(shipped["best_candidate"],
                                                                                        cat["names"]),
                      "heldout_auc": shipped["heldout"]["auc"], "source": shipped["source"]},
          "tokens": tokens}


def main():
  args, m, disc = common.setup("models_probe", __doc__, launcher_steps=True, **{
      "--split": dict(default="tune"), "--limit": dict(type=int, default=0),
      "--data": dict(default=os.path.join(common.DATA, "benchmark")), "--analyze": dict(action="store_true")})
  from tokenlabel_jax import data as data_lib, discriminators as disc_lib  # pylint: disable=import-outside-toplevel
  path = os.path.join(args.out, f"{m.cfg.name}_{disc.name}_{args.split}.json")
  if args.analyze:
    analyze(path)
    return
  disc_lib.MEMO.max_bytes = 3 << 30  # the probe's second preparation of each split reads the first one's passes
  spec = json.load(open(os.path.join(common.HERE, "naming", "categories.json")))["categories"]
  cats = [c for c in spec if c["split"] == args.split][:args.limit or None]
  mask = disc_lib.word_like_mask(m.tokenizer, m.cfg.vocab_size)
  done = json.load(open(path)) if os.path.exists(path) else []
  have = {d["name"] for d in done}
  t0 = time.time()
  for i, c in enumerate(cats):
    if c["name"] in have:
      continue
    feature = data_lib.load_features(os.path.join(args.data, c["name"] + ".jsonl"))[0]
    done.append(probe_category(m, disc, mask, feature, c, os.path.join(args.out, f"{m.cfg.name}_{disc.name}")))
    print(f"{i + 1}/{len(cats)} {c['name']}: shipped {done[-1]['shipped']['label']!r} "
          f"({'names' if done[-1]['shipped']['names'] else 'miss'}), {time.time() - t0:.0f}s", flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(path + ".tmp", "w") as f:
      json.dump(done, f, ensure_ascii=False)
    os.replace(path + ".tmp", path)


def rules():
  """Candidate rules: (name, function of the category's token rows -> chosen row)."""
  def best(rows, key, among):
    pool = [r for r in rows if r["word_like"] and among(r)]
    return max(pool, key=key) if pool else None

  def top_by(rows, key, k):
    ranked = sorted((r for r in rows if r["word_like"]), key=key, reverse=True)[:k]
    ids = {r["id"] for r in ranked}
    return lambda r: r["id"] in ids

  out = {"lowest val loss": lambda rows: best(rows, lambda r: -r["val_loss"], lambda r: True)}
  for split in ("trv", "val"):
    for k in (10, 20, 30, 50, 100):
      out[f"most natural ({split}) among best {k} by AUC ({split})"] = (
          lambda rows, k=k, s=split: best(rows, lambda r: r[f"nat_{s}"], top_by(rows, lambda r: r[f"auc_{s}"], k)))
    for k in (10, 20, 50):
      out[f"most natural ({split}) among best {k} by val loss"] = (
          lambda rows, k=k, s=split: best(rows, lambda r: r[f"nat_{s}"], top_by(rows, lambda r: -r["val_loss"], k)))
    for tau in (0.8, 0.85, 0.9, 0.95):
      out[f"most natural ({split}) with AUC ({split}) >= {tau}"] = (
          lambda rows, tau=tau, s=split: best(rows, lambda r: r[f"nat_{s}"], lambda r: r[f"auc_{s}"] >= tau))
  return out


def analyze(path: str) -> None:
  probes = json.load(open(path))
  n = len(probes)
  lines = [f"# Choice rules on {os.path.basename(path)} ({n} categories)", "",
           f"shipped (coverage rule): {sum(p['shipped']['names'] for p in probes)} of {n}",
           f"a name among the kept tokens (ceiling of single-token rules): "
           f"{sum(any(t['names'] and t['word_like'] for t in p['tokens']) for p in probes)} of {n}", "",
           "| rule | names the category | median held-out AUC |", "|---|---|---|"]
  for name, rule in rules().items():
    picks = [rule(p["tokens"]) for p in probes]
    hits = sum(bool(r and r["names"]) for r in picks)
    med = float(np.median([r["auc_heldout"] for r in picks if r]))
    lines.append(f"| {name} | {hits} | {med:.3f} |")
  text = "\n".join(lines)
  print(text)
  with open(path[:-5] + "_rules.md", "w") as f:
    f.write(text + "\n")


if __name__ == "__main__":
  main()
