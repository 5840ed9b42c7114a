"""Labels of real features (SAE latents, MLP neurons) measured against baselines on the same held-out examples.

After `python -m tokenlabel_jax.sae --output_dir=runs/sae`:
python experiments/real_features/real_features.py --run=runs/sae [--n_latents=200] [--n_neurons=50] [--steps=300]
python experiments/real_features/real_features.py --run=runs/sae --model=qwen2.5-coder-1.5b --steps=0 --rule='' \
    --explainer --scorer_model=smollm2-135m-instruct --first=32 --n_neurons=8 --name=real_features_qwen2.5-coder-1.5b
(--skip=32 --first=32: the sample's next 32 latents; --n_latents=0 --n_neurons=50: the neurons alone.)

Latents are drawn uniformly (seed 0) from the exported (alive) ones; neurons are the first exported ones. For each
feature: our label's held-out AUC, and on the same held-out examples (same calibration on the same validation
examples) the AUC of (a) the most frequent token among its top activations as a label (what a dashboard shows first),
(b) the exact vocabulary scan (every word-like token scored as a label, the best on validation kept), (c) a random
word-like token; and (d) the token lookup, not a label: each held-out token scored by its own mean activation in the
training records (how much of the feature a token's identity alone explains). With --explainer, also the LLM
explainer's label (tokenlabel_jax.explaining, greedy) and the combination (`label --propose_with=explainer`, four
answers), scored on the same held-out examples. The results file is rewritten after every batch of features, so a
killed run leaves the features it finished; started again, it labels only the features whose runs under
--out/<model>/ were not finished with the same settings (each model has its own folder there), and takes the scorer
figures and timings of the rows the killed run had written.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import shlex
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import baselines  # pylint: disable=g-import-not-at-top
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
  return [baselines.top_token(feature, lcfg.threshold), tokenizer.token_str(int(rng.choice(words)))]


def latent_sample(names: list[str], n: int) -> list[str]:
  """The study's latents: n of the alive latents `names`, drawn with seed 0, sorted by name (every study on these
  latents takes the first N of this list)."""
  return sorted(np.random.default_rng(0).choice(sorted(names), min(n, len(names)), replace=False).tolist())


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
      if all("scorer_auc" in r for r in out[kind]):
        summary[kind]["scorer"] = out[kind][0]["scorer"]
        summary[kind]["median_scorer_auc"] = statistics.median(r["scorer_auc"] for r in out[kind])
        for b in ("top_token", "vocab_scan", "random"):
          summary[kind][f"median_{b}_scorer_auc"] = statistics.median(
              r["baselines"][b]["scorer_auc"] for r in out[kind])
      for b in ("explainer", "combined"):
        rows = [r[b] for r in out[kind] if b in r]
        if rows:
          summary[kind][f"median_{b}_auc"] = statistics.median(x["heldout_auc"] for x in rows)
          summary[kind][f"{b}_share_auc_ge_0.8"] = float(np.mean([x["heldout_auc"] >= 0.8 for x in rows]))
          if all("scorer_auc" in x for x in rows):
            summary[kind][f"median_{b}_scorer_auc"] = statistics.median(x["scorer_auc"] for x in rows)
      if any("combined" in r for r in out[kind]):
        summary[kind]["combined_sources"] = dict(collections.Counter(r["combined"]["source"] for r in out[kind]))
  return summary


def main():
  args, m, disc = common.setup("real_features", __doc__,
                               **{"--run": dict(default="runs/sae"), "--n_latents": dict(type=int, default=200),
                                  "--n_neurons": dict(type=int, default=50),
                                  "--name": dict(default="real_features", help="results file name"),
                                  "--features_per_batch": dict(type=int, default=4),
                                  "--rule": dict(default="typicality", help="choice rule (selection.SelectConfig.rule; "
                                                 "'': the model's own, as `label` uses)"),
                                  "--scorer_model": dict(default="", help="also score every label with the likelihood "
                                                         "discriminator of this model (e.g. smollm2-135m-instruct): a "
                                                         "judge no method was optimized against"),
                                  "--explainer": dict(action="store_true",
                                                      help="also the LLM explainer's label and the combination"),
                                  "--first": dict(type=int, default=0,
                                                  help="label only the first N latents of the sample (0: all)"),
                                  "--skip": dict(type=int, default=0,
                                                 help="leave out the sample's first N latents (before --first)")})
  # One folder of runs per model: a run with another model must not take the place of this one's stored results.
  args.out = os.path.join(args.out, m.cfg.name)
  with open(os.path.join(args.run, "export.json")) as f:
    export = json.load(f)
  with open(os.path.join(args.run, "sae", "metrics.json")) as f:
    sae = json.load(f)
  names = sorted(export["latents"])
  # The same latents as the full sample's, a slice of it at a time, for cheaper comparisons.
  sample = latent_sample(names, args.n_latents)[args.skip:][:args.first or None]
  lat = {f.name: f for f in data_lib.load_features(os.path.join(args.run, "latents")) if f.name in set(sample)}
  neu = data_lib.load_features(os.path.join(args.run, "neurons"))[:args.n_neurons]
  words = np.flatnonzero(disc_lib.word_like_mask(m.tokenizer, m.cfg.vocab_size))
  rng = np.random.default_rng(0)
  summary_sae = {k: sae.get(k) for k in ("fvu", "fvu_typical", "outsized_fraction", "l0", "dead_fraction",
                                         "loss_recovered", "tokens")}
  jobs = (("latents", [lat[n] for n in sample], {n: 0.0 for n in sample}),
          ("neurons", neu, {n: v["threshold"] for n, v in export["neurons"].items()}))
  total = sum(len(feats) for _, feats, _ in jobs)
  out, wall = {"latents": [], "neurons": []}, {"latents": [], "neurons": []}
  scorer_m = None
  if args.scorer_model:
    from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
    scorer_m = load_model(args.scorer_model)
  earlier, earlier_wall = earlier_rows(args)
  for kind, feats, thresholds in jobs:
    by_thr = collections.defaultdict(list)
    for f in feats:
      by_thr[thresholds[f.name]].append(f)
    for thr, group in by_thr.items():
      lcfg = LabelConfig(steps=args.steps, threshold=thr)
      for i in range(0, len(group), args.features_per_batch):
        chunk = group[i:i + args.features_per_batch]
        t0 = time.time()
        rows = label_chunk(args, m, disc, lcfg, kind, chunk, words, rng)
        kept = [_earlier_row(earlier, r) for r in rows]
        if scorer_m is not None:
          for f, row, e in zip(chunk, rows, kept):
            if not (e is not None and e.get("scorer") == f"likelihood ({scorer_m.cfg.name})" and _copy_scores(e, row)):
              independent_scores(scorer_m, f, lcfg, row)
        for row, e in zip(rows, kept):
          row["wall_s"] = e.get("wall_s", earlier_wall.get(kind)) if e is not None else None
        new = [r for r in rows if r["wall_s"] is None]  # labeled now: they share the chunk's time
        for r in new:
          r["wall_s"] = (time.time() - t0) / len(new)
        out[kind] += rows
        wall[kind] += [r["wall_s"] for r in rows]
        write(args, m, summary_sae, out, wall, len(names), total)


def label_chunk(args, m, disc, lcfg, kind: str, chunk, words, rng) -> list[dict]:
  """Our labels for a few features (one vmapped run), with the baselines and, with --explainer, the explainer's label
  and the combination, all on the same held-out examples."""
  refs = {f.name: reference_labels(f, lcfg, words, m.tokenizer, rng) for f in chunk}
  # Default: the rule the published figures were measured with (the coverage rule came later, chosen on categories).
  scfg = selection.SelectConfig(rule=args.rule)
  results = label_or_keep(m, chunk, disc, lcfg, os.path.join(args.out, kind), refs, scfg)
  expl = comb = [None] * len(chunk)
  if args.explainer:
    from tokenlabel_jax import explainer, explaining  # pylint: disable=import-outside-toplevel
    expl = explaining.aligned(explaining.explain_features(m, chunk, disc, lcfg, explainer.ExplainConfig(samples=4),
                                                          os.path.join(args.out, kind + "_explainer"),
                                                          per_batch=len(chunk)), chunk)  # None: failed (see its error)
    comb = label_or_keep(m, chunk, disc, lcfg, os.path.join(args.out, kind + "_combined"), {},
                         dataclasses.replace(scfg, propose_with="explainer", proposals=4))
  rows = []
  for f, r, e, c in zip(chunk, results, expl, comb):
    top, rand = refs[f.name]
    row = {"id": f.name, "label": r["label"], "best_candidate": r["best_candidate"],
           "heldout_auc": r["heldout"]["auc"], "heldout_auc_lower95": r["heldout_auc_lower95"],
           "top_contexts": top_contexts(f),
           "baselines": {"top_token": {"label": top, "heldout_auc": r["references"][top]["auc"]},
                         "vocab_scan": scan_baseline(r),
                         "random": {"label": rand, "heldout_auc": r["references"][rand]["auc"]}},
           "token_lookup_auc": token_lookup_auc(f, labeling.sample_split(f, lcfg, "heldout"))}
    if e is not None:
      row["explainer"] = {"label": e["best_candidate"], "status": e["explainer"]["status"],
                          "answers": e["explainer"]["proposals"], "heldout_auc": _auc(e)}
      row["combined"] = {"label": c["best_candidate"], "source": c["source"], "heldout_auc": _auc(c)}
    rows.append(row)
    print(json.dumps({k: v for k, v in row.items() if k != "top_contexts"}, ensure_ascii=False), flush=True)
  return rows


def label_or_keep(m, chunk, disc, lcfg, out_dir: str, refs: dict, scfg) -> list[dict]:
  """`labeling.label_features` on the features of `chunk` that no earlier run finished in `out_dir` with the same
  model, settings and reference labels: a stopped study resumes where it stopped."""
  done = labeling.finished_results(out_dir, [f.name for f in chunk], m, disc, lcfg, scfg)
  done = {n: r for n, r in done.items() if all(t in r.get("references", {}) for t in refs.get(n, ()))}
  todo = [f for f in chunk if f.name not in done]
  if todo:
    got = labeling.label_features(m, todo, disc, lcfg, out_dir, refs, scfg=scfg, plots=False)
    done.update((f.name, r) for f, r in zip(todo, got))
  return [done[f.name] for f in chunk]


def independent_scores(scorer_m, feature: data_lib.Feature, lcfg: LabelConfig, row: dict) -> None:
  """Adds `scorer_auc` to our label and to every baseline of `row`: held-out AUC under the likelihood discriminator
  of another model, on the same held-out examples (an explainer without a usable answer scores 0.5, as under the
  namer)."""
  slots, texts = _slots(row), _slot_labels(row)
  got = common.scorer_aucs(scorer_m, feature, lcfg, texts)
  row["scorer"] = f"likelihood ({scorer_m.cfg.name})"
  for slot, t in zip(slots, texts):
    slot["scorer_auc"] = got.get(t, 0.5)


def earlier_rows(args) -> tuple[dict, dict]:
  """The rows of this results file as a killed run of the same command left them, by feature id, and its seconds per
  feature by kind: a resumed run takes their scorer figures and timings instead of scoring them again (about 14 s a
  feature with the 135M scorer) or timing a reload as if it were a labeling."""
  path = os.path.join(common.RESULTS, args.name + ".json")
  if not os.path.exists(path):
    return {}, {}
  try:
    with open(path) as f:
      got = json.load(f)
  except (OSError, ValueError):  # cut off mid-write: its labels are in the run folders, only the scoring is redone
    return {}, {}
  if got.get("command") != _command():
    return {}, {}
  rows = {r["id"]: r for k in ("latents", "neurons") for r in got.get(k, [])}
  return rows, got.get("timing", {}).get("labeling_s_per_feature", {})


def _command() -> str:
  """This run's command as the results file records it (and as a resumed run must match)."""
  return "python experiments/real_features/real_features.py " + shlex.join(sys.argv[1:])


def _earlier_row(earlier: dict, row: dict) -> dict | None:
  """The earlier run's row of the same feature, if it has the same label in every slot; else None."""
  e = earlier.get(row["id"])
  return e if e is not None and _slot_labels(e) == _slot_labels(row) else None


def _slots(row: dict) -> list[dict]:
  return [row] + [row["baselines"][b] for b in ("top_token", "vocab_scan", "random")] + [
      row[b] for b in ("explainer", "combined") if b in row]


def _slot_labels(row: dict) -> list:
  return [slot.get("best_candidate", slot.get("label")) for slot in _slots(row)]


def _copy_scores(earlier: dict, row: dict) -> bool:
  """Copies the scorer's AUCs of an earlier row with the same labels into `row`; False where it has none."""
  if not all("scorer_auc" in slot for slot in _slots(earlier)):
    return False
  for old, new in zip(_slots(earlier), _slots(row)):
    new["scorer_auc"] = old["scorer_auc"]
  row["scorer"] = earlier["scorer"]
  return True


def _auc(result: dict) -> float:
  """A result's held-out AUC; 0.5 (chance) where it has no label to score, so a miss counts against its method."""
  auc = (result.get("heldout") or {}).get("auc")
  return float(auc) if auc is not None else 0.5


def write(args, m, sae_summary: dict, out: dict, wall: dict, alive: int, total: int) -> None:
  """The results file as it stands: the summary, then one row per feature (rewritten after every batch)."""
  per_feature = {k: statistics.median(v) for k, v in wall.items() if v}
  timing = {"labeling_s_per_feature": per_feature, "alive_latents": alive,
            # Not run in full here (hours on 2 cores): the latents' measured seconds per feature times their number.
            "full_sae_labeling_estimate_s": round(per_feature.get("latents", float("nan")) * alive, 1)}
  done = sum(len(v) for v in out.values())
  summary = {"sae": sae_summary, "summary": summarize(out), "timing": timing,
             "features": {"done": done, "of": total}}
  flat = []
  for k in ("latents", "neurons"):
    for r in out[k]:
      row = {"kind": k, "id": r["id"], "label": r["label"], "AUC": r["heldout_auc"],
             "scorer AUC": r.get("scorer_auc", "")}
      for b in ("explainer", "combined"):
        if b in r:
          row[b] = f"{r[b]['label']!r} {r[b]['heldout_auc']:.3f}"
      for b in ("top_token", "vocab_scan"):
        row[b.replace("_", " ")] = f"{r['baselines'][b]['label']!r} {r['baselines'][b]['heldout_auc']:.3f}"
      row.update({"random": f"{r['baselines']['random']['heldout_auc']:.3f}", "token lookup": r["token_lookup_auc"],
                  "top contexts": r["top_contexts"]})
      flat.append(row)
  cols = (["kind", "id", "label", "AUC"] + (["scorer AUC"] if args.scorer_model else [])
          + (["explainer", "combined"] if args.explainer else [])
          + ["top token", "vocab scan", "random", "token lookup", "top contexts"])
  partial = f"Partial: {done} of {total} features.\n\n" if done < total else ""
  common.write_table(args.name, flat, cols, f"Real features of the embedded SAE labeled by {m.cfg.name}: labels vs "
                     "baselines (held-out AUC)", partial + "```\n" + json.dumps(summary, indent=1) + "\n```")
  # The table's JSON is replaced by the structure: the summary, then one row per feature.
  with open(os.path.join(common.RESULTS, args.name + ".json"), "w") as f:
    json.dump({"command": _command(),
               **summary, **out, "full_sae_labeling_s": None, "date": time.strftime("%Y-%m-%d")}, f, indent=1,
              ensure_ascii=False)


if __name__ == "__main__":
  main()
