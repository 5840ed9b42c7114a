"""The paper's judge with the gradient on real SAE latents, beside the namer and the top token (plan_judge_latents.md:
the first --n latents of the study's seed-0 sample; the categories' judge study's settings).

  python experiments/real_features/judge_latents.py --model qwen2.5-coder-1.5b --run runs/sae   # ~6 min per latent

Each latent is labeled by the namer at the model's defaults and by the judge with a short gradient run. The judge run
also scores the namer's label, the top-activating token and a random word on its held-out examples, and the 135M
model's likelihood discriminator scores the same four labels on the same examples: a judge neither method was
optimized against. A cut run resumes from the rows already written.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from experiments.real_features import real_features  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import baselines, data as data_lib  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import discriminators as disc_lib, labeling, selection  # pylint: disable=g-import-not-at-top
from tokenlabel_jax.loading import load_model  # pylint: disable=g-import-not-at-top
from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=g-import-not-at-top

NAME = "real_features_judge"
LABELS = ("judge", "namer", "top token", "random")  # the four labels every row scores under both judges


def main():
  args, m, _ = common.setup(NAME, __doc__, steps=40, **{
      "--run": dict(default="runs/sae"), "--n": dict(type=int, default=8, help="the sample's first N latents"),
      "--seeds": dict(type=int, default=1), "--batch_size": dict(type=int, default=8),
      "--n_train": dict(type=int, default=32), "--n_val": dict(type=int, default=24),
      "--n_heldout": dict(type=int, default=32), "--scorer_model": dict(default="smollm2-135m-instruct"),
      "--name": dict(default=NAME, help="result file name under experiments/results/")})
  judge, namer = disc_lib.get("judge"), disc_lib.get("namer")
  lcfg = LabelConfig(steps=args.steps, seeds=args.seeds, batch_size=args.batch_size, n_train=args.n_train,
                     n_val=args.n_val, n_heldout=args.n_heldout)
  settings = {k: getattr(args, k) for k in ("model", "steps", "seeds", "batch_size", "n_train", "n_val", "n_heldout",
                                            "scorer_model")}
  with open(os.path.join(args.run, "export.json")) as f:
    sample = real_features.latent_sample(list(json.load(f)["latents"]), 200)[:args.n]
  feats = {f.name: f for f in data_lib.load_features(os.path.join(args.run, "latents")) if f.name in set(sample)}
  words = np.flatnonzero(disc_lib.word_like_mask(m.tokenizer, m.cfg.vocab_size))
  rng = np.random.default_rng(0)
  rand = {n: m.tokenizer.token_str(int(rng.choice(words))) for n in sample}  # drawn for all first: resume-proof
  earlier, summary = common.earlier_run(args.name, settings)
  done = {r["id"]: r for r in earlier if r["id"] in set(sample)}
  t0 = time.time() - float(summary.get("wall_s", 0.0)) if done else time.time()
  scorer_m = load_model(args.scorer_model)
  for name in sample:
    if name in done:
      continue
    f = feats[name]
    t1 = time.time()
    nr = labeling.label_features(m, [f], namer, LabelConfig(steps=0), os.path.join(args.out, "namer"), (), True,
                                 None, selection.SelectConfig(), plots=False)[0]
    namer_s = time.time() - t1
    labels = {"namer": nr["label"] or nr["best_candidate"], "top token": baselines.top_token(f, 0.0),
              "random": rand[name]}
    refs = list(dict.fromkeys(t for t in labels.values() if t and t.strip()))  # looked up as written, below
    jr = labeling.label_features(m, [f], judge, lcfg, os.path.join(args.out, "judge"), {name: refs}, True, None,
                                 selection.SelectConfig(), plots=False)[0]
    labels["judge"] = jr["label"] or jr["best_candidate"]
    fa = data_lib.assign_splits(f, threshold=0.0)  # the splits every run above drew from
    lookup = real_features.token_lookup_auc(fa, labeling.sample_split(fa, lcfg, "heldout"))
    scored = common.scorer_aucs(scorer_m, f, lcfg, list(labels.values()))
    done[name] = row(f, labels, nr, jr, scored, lookup, namer_s)
    write(args, [done[n] for n in sample if n in done], len(sample), settings, t0)


def row(f: data_lib.Feature, labels: dict, nr: dict, jr: dict, scored: dict, lookup: float, namer_s: float) -> dict:
  """One latent: the four labels, each one's held-out AUC under the judge (on the judge run's examples) and under the
  scorer (the same examples), whether each method gave a label at all, and the strongest contexts."""
  ref = jr["references"]
  def judge_auc(k):
    t = labels[k]
    return jr["heldout"]["auc"] if k == "judge" else ref[t]["auc"] if t in ref else 0.5
  by_val = sorted(jr["verification"], key=lambda v: v["val_loss"])
  return {"id": f.name, **{f"{k} label": labels[k] for k in LABELS},
          **{f"{k}, judge AUC": judge_auc(k) for k in LABELS},
          **{f"{k}, scorer AUC": scored.get(labels[k], 0.5) for k in LABELS},
          "judge gave a label": jr["label"] is not None, "namer gave a label": nr["label"] is not None,
          "namer AUC, own run": nr["heldout"]["auc"], "token lookup AUC": lookup,
          "judge top 5 by validation": [v["label"] for v in by_val[:5]],
          "top contexts": real_features.top_contexts(f), "judge s": jr["wall_time_s"], "namer s": round(namer_s, 1)}


def summarize(rows: list[dict]) -> dict:
  """Medians under each judge, and sign tests of the judge's label against the top token and the namer's label."""
  out = {}
  for judge in ("judge", "scorer"):
    for k in LABELS:
      out[f"median {judge} AUC, {k}"] = statistics.median(r[f"{k}, {judge} AUC"] for r in rows)
    for other in ("top token", "namer"):
      better = sum(r[f"judge, {judge} AUC"] > r[f"{other}, {judge} AUC"] for r in rows)
      worse = sum(r[f"judge, {judge} AUC"] < r[f"{other}, {judge} AUC"] for r in rows)
      out[f"{judge}: judge label above {other}"] = f"{better} of {len(rows)} (below {worse})"
      out[f"{judge}: sign test p, judge label vs {other}"] = common.sign_test(better, worse)
  out["median token lookup AUC"] = statistics.median(r["token lookup AUC"] for r in rows)
  out["judge gave a label"] = sum(r["judge gave a label"] for r in rows)
  out["namer gave a label"] = sum(r["namer gave a label"] for r in rows)
  out["median judge s"] = statistics.median(r["judge s"] for r in rows)
  return out


def write(args, rows: list[dict], n: int, settings: dict, t0: float) -> None:
  s = summarize(rows)
  summary = dict(settings, latents=len(rows), wall_s=round(time.time() - t0, 1), **s)
  notes = (f"Median held-out AUC under the judge (its own 32 held-out examples): the judge's label "
           f"{s['median judge AUC, judge']:.3f}, the namer's {s['median judge AUC, namer']:.3f}, the top token "
           f"{s['median judge AUC, top token']:.3f}, a random word {s['median judge AUC, random']:.3f}. Under the 135M "
           f"scorer on the same examples: {s['median scorer AUC, judge']:.3f}, {s['median scorer AUC, namer']:.3f}, "
           f"{s['median scorer AUC, top token']:.3f}, {s['median scorer AUC, random']:.3f}. Token lookup (not a "
           f"label) {s['median token lookup AUC']:.3f}. The judge's label above the top token: "
           f"{s['judge: judge label above top token']} under the judge, {s['scorer: judge label above top token']} "
           f"under the scorer. A label withheld as not above chance is scored as its best candidate.")
  if len(rows) < n:
    notes = f"Partial: {len(rows)} of {n} latents so far. " + notes
  common.write_table(args.name, rows, ["id", "judge label", "namer label", "top token label", "judge, judge AUC",
                                       "namer, judge AUC", "top token, judge AUC", "random, judge AUC",
                                       "judge, scorer AUC", "namer, scorer AUC", "top token, scorer AUC",
                                       "token lookup AUC", "top contexts", "judge s"],
                     f"The paper's judge with the gradient on real latents, {args.model}",
                     notes, summary=summary)


if __name__ == "__main__":
  main()
