"""Labels of real features (SAE latents, MLP neurons) measured against baselines on the same held-out examples.

After `python -m tokenlabel_jax.sae --output_dir=runs/sae`:
python experiments/real_features/real_features.py --run=runs/sae [--n_latents=200] [--n_neurons=50] [--steps=300]

Latents are drawn uniformly (seed 0) from the exported (alive) ones; neurons are the first exported ones. For each
feature: our label's held-out AUC, and on the same held-out examples (same calibration on the same validation
examples) the AUC of (a) the most frequent token among its top activations as a label (what a dashboard shows first),
(b) the exact vocabulary scan (every word-like token scored as a label, the best on validation kept), (c) a random
word-like token; and (d) the token lookup, not a label: each held-out token scored by its own mean activation in the
training records (how much of the feature a token's identity alone explains).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import data as data_lib  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import discriminators as disc_lib  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import evaluation  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import labeling  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import selection  # pylint: disable=g-import-not-at-top
from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=g-import-not-at-top


def token_lookup_auc(feature: data_lib.Feature, heldout: list[data_lib.Example]) -> float:
  """AUC of scoring each held-out token by its mean activation over the training records (unseen: the overall mean)."""
  sums, counts = collections.defaultdict(float), collections.Counter()
  for r in feature.records:
    if r.split == "train":
      for t, a in zip(r.tokens, r.activations):
        sums[t] += float(a)
        counts[t] += 1
  overall = sum(sums.values()) / max(1, sum(counts.values()))
  scores = [sums[e.token] / counts[e.token] if counts[e.token] else overall for e in heldout]
  targets = np.array([e.target > 0.5 for e in heldout])
  return float(evaluation.roc_auc(np.array(scores), targets))


def top_contexts(feature: data_lib.Feature, n: int = 2, before: int = 10, after: int = 3) -> str:
  """The n strongest training records, each as a window around its peak token, shown [[like this]]."""
  recs = sorted((r for r in feature.records if r.split == "train"), key=lambda r: -float(r.activations.max()))[:n]
  out = []
  for r in recs:
    i = int(np.argmax(r.activations))
    b, t, a = data_lib.context_window(r, i, before, after)
    out.append(("".join(b) + "[[" + t + "]]" + "".join(a)).replace("\n", "⏎").replace("|", "\\|")
               + f" ({float(r.activations[i]):.1f})")
  return "<br>".join(out)


def scan_baseline(result: dict) -> dict:
  """The exact vocabulary scan: among the run's exactly scored single tokens (which include the whole word-like
  vocabulary, scanned by the namer), the one with the lowest calibrated validation loss."""
  best = min((v for v in result["verification"] if len(v["token_ids"]) == 1), key=lambda v: v["val_loss"])
  return {"label": best["label"], "heldout_auc": best["auc"]}


def reference_labels(feature: data_lib.Feature, lcfg: LabelConfig, words: np.ndarray, tokenizer, rng) -> list[str]:
  """The top-token baseline and a random word-like token, scored by the labeling run beside its label."""
  return [common.top_token_label(feature, lcfg.threshold), tokenizer.token_str(int(rng.choice(words)))]


def summarize(out: dict) -> dict:
  """Medians of our label's and each baseline's held-out AUC, and the share of features with AUC >= 0.8."""
  summary = {}
  for kind in ("latents", "neurons"):
    aucs = [r["heldout_auc"] for r in out.get(kind, [])]
    if aucs:
      summary[kind] = {"n": len(aucs), "median_auc": statistics.median(aucs),
                       "share_auc_ge_0.8": float(np.mean(np.array(aucs) >= 0.8)),
                       "no_label": sum(r["label"] is None for r in out[kind]),
                       **{f"median_{b}_auc": statistics.median(r["baselines"][b]["heldout_auc"] for r in out[kind])
                          for b in ("top_token", "vocab_scan", "random")},
                       "median_token_lookup_auc": statistics.median(r["token_lookup_auc"] for r in out[kind])}
  return summary


def main():
  args, m, disc = common.setup("real_features", __doc__,
                               **{"--run": dict(default="runs/sae"), "--n_latents": dict(type=int, default=200),
                                  "--n_neurons": dict(type=int, default=50),
                                  "--name": dict(default="real_features", help="results file name"),
                                  "--features_per_batch": dict(type=int, default=4),
                                  "--rule": dict(default="typicality", help="choice rule (selection.SelectConfig.rule)"),
                                  "--first": dict(type=int, default=0,
                                                  help="label only the first N latents of the sample (0: all)")})
  with open(os.path.join(args.run, "export.json")) as f:
    export = json.load(f)
  with open(os.path.join(args.run, "sae", "metrics.json")) as f:
    sae = json.load(f)
  names = sorted(export["latents"])
  sample = sorted(np.random.default_rng(0).choice(names, min(args.n_latents, len(names)), replace=False).tolist())
  sample = sample[:args.first or None]  # the same latents as the full sample's first ones, for cheaper comparisons
  lat = {f.name: f for f in data_lib.load_features(os.path.join(args.run, "latents")) if f.name in set(sample)}
  neu = data_lib.load_features(os.path.join(args.run, "neurons"))[:args.n_neurons]
  words = np.flatnonzero(disc_lib.word_like_mask(m.tokenizer, m.cfg.vocab_size))
  rng = np.random.default_rng(0)
  out, wall = {}, {"latents": [], "neurons": []}
  for kind, feats, thresholds in (("latents", [lat[n] for n in sample], {n: 0.0 for n in sample}),
                                  ("neurons", neu, {n: v["threshold"] for n, v in export["neurons"].items()})):
    rows = []
    by_thr = collections.defaultdict(list)
    for f in feats:
      by_thr[thresholds[f.name]].append(f)
    for thr, group in by_thr.items():
      lcfg = LabelConfig(steps=args.steps, threshold=thr)
      for i in range(0, len(group), args.features_per_batch):
        chunk = group[i:i + args.features_per_batch]
        refs = {f.name: reference_labels(f, lcfg, words, m.tokenizer, rng) for f in chunk}
        t0 = time.time()
        # Default: the rule the published figures were measured with (the coverage rule came later, chosen on
        # categories).
        results = labeling.label_features(m, chunk, disc, lcfg, os.path.join(args.out, kind), refs,
                                          scfg=selection.SelectConfig(rule=args.rule))
        wall[kind].append((time.time() - t0) / len(chunk))
        for f, r in zip(chunk, results):
          top, rand = refs[f.name]
          rows.append({"id": f.name, "label": r["label"], "best_candidate": r["best_candidate"],
                       "heldout_auc": r["heldout"]["auc"], "heldout_auc_lower95": r["heldout_auc_lower95"],
                       "top_contexts": top_contexts(f),
                       "baselines": {"top_token": {"label": top, "heldout_auc": r["references"][top]["auc"]},
                                     "vocab_scan": scan_baseline(r),
                                     "random": {"label": rand, "heldout_auc": r["references"][rand]["auc"]}},
                       "token_lookup_auc": token_lookup_auc(f, labeling.sample_split(f, lcfg, "heldout"))})
          print(json.dumps({k: v for k, v in rows[-1].items() if k != "top_contexts"}, ensure_ascii=False),
                flush=True)
    out[kind] = rows
  per_feature = {k: statistics.median(v) for k, v in wall.items() if v}
  timing = {"labeling_s_per_feature": per_feature, "alive_latents": len(names),
            # Not run in full here (hours on 2 cores): the latents' measured seconds per feature times their number.
            "full_sae_labeling_estimate_s": round(per_feature.get("latents", float("nan")) * len(names), 1)}
  summary = {"sae": {k: sae.get(k) for k in ("fvu", "fvu_typical", "outsized_fraction", "l0", "dead_fraction",
                                             "loss_recovered", "tokens")},
             "summary": summarize(out), "timing": timing}
  flat = [{"kind": k, "id": r["id"], "label": r["label"], "AUC": r["heldout_auc"],
           "top token": f"{r['baselines']['top_token']['label']!r} {r['baselines']['top_token']['heldout_auc']:.3f}",
           "vocab scan": f"{r['baselines']['vocab_scan']['label']!r} {r['baselines']['vocab_scan']['heldout_auc']:.3f}",
           "random": f"{r['baselines']['random']['heldout_auc']:.3f}", "token lookup": r["token_lookup_auc"]}
          for k in ("latents", "neurons") for r in out[k]]
  for row, r in zip(flat, [r for k in ("latents", "neurons") for r in out[k]]):
    row["top contexts"] = r["top_contexts"]
  common.write_table(args.name, flat, ["kind", "id", "label", "AUC", "top token", "vocab scan", "random",
                                       "token lookup", "top contexts"],
                     f"Real features of {m.cfg.name}: labels vs baselines (held-out AUC)",
                     "```\n" + json.dumps(summary, indent=1) + "\n```")
  # The table's JSON is replaced by the structure: the summary, then one row per feature.
  with open(os.path.join(common.RESULTS, args.name + ".json"), "w") as f:
    json.dump({"command": "python experiments/real_features/real_features.py " + " ".join(sys.argv[1:]), **summary, **out,
               "full_sae_labeling_s": None, "date": time.strftime("%Y-%m-%d")}, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
  main()
