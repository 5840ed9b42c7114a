"""Probe: climb from a member to its category among the candidates (plan: experiments/naming/plan_climb.md).

  python experiments/naming/probes/naming_climb.py --split tune  # the pool's "c is a kind of" matrix, per category
  python experiments/naming/probes/naming_climb.py --split tune --analyze
    # the four planned rules against the shipped one

Reads the saved set-pool probes (naming_setpool.py, beside this file: the shipped pool and signals of each category),
puts each candidate of the shipped pool to the namer, "<candidate> is a kind of" after the namer's few-shot lines,
and keeps log P(l | c) for every pair of candidates (M[c][l]). Saved per category under
experiments/runs/naming_climb/<split>/; --analyze only reads them.
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
from experiments.naming.probes.naming_setpool import _choose, _pool  # pylint: disable=g-import-not-at-top


def kind_of_matrix(m, words: list[str], ids: list[int]) -> np.ndarray:
  """M[i, j] = log P(token ids[j] | namer shots + "words[i] is a kind of")."""
  from tokenlabel_jax.discriminators import prefix, templates  # pylint: disable=import-outside-toplevel
  prompts = [m.tokenizer.encode(templates._KIND_SHOTS + w + " is a kind of")  # pylint: disable=protected-access
             for w in words]
  logq = np.asarray(prefix.last_logq(m.params, m.cfg, prompts))
  return logq[:, ids]


def run_probe(split: str, probe_dir: str, out: str) -> None:
  from absl import logging  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.WARNING)
  m = load_model("smollm2-135m-instruct")
  for path in sorted(glob.glob(os.path.join(probe_dir, "*.json"))):
    dest = os.path.join(out, os.path.basename(path))
    if os.path.exists(dest):
      continue
    t0 = time.time()
    cat = json.load(open(path))
    pool = _pool(cat["cands"], 0)
    words = [r["label"].strip() for r in pool]
    ids = [r["id"] for r in pool]
    res = {"name": cat["name"], "labels": [r["label"] for r in pool], "ids": ids,
           "M": kind_of_matrix(m, words, ids).tolist()}
    with open(dest + ".tmp", "w") as fh:
      json.dump(res, fh)
    os.replace(dest + ".tmp", dest)
    print(f"{cat['name']}: {len(pool)} candidates ({time.time() - t0:.1f}s)", flush=True)


def signals(M: np.ndarray) -> dict[str, np.ndarray]:
  """gen_in(l): mean over c != l of M[c, l]; gen_asym(l): mean over c != l of M[c, l] - M[l, c]."""
  n = len(M)
  off = ~np.eye(n, dtype=bool)
  gen_in = np.where(off, M, 0).sum(0) / max(n - 1, 1)
  gen_asym = np.where(off, M - M.T, 0).sum(0) / max(n - 1, 1)
  return {"gen_in": gen_in, "gen_asym": gen_asym}


def _zsum_with(pool, extra: np.ndarray) -> dict:
  from tokenlabel_jax import coverage  # pylint: disable=import-outside-toplevel
  total = sum(coverage.zscore([r[k] for r in pool]) for k in ("lrg", "typ_all", "set_pos")) + coverage.zscore(extra)
  return pool[int(np.argmax(total))]


def _climb(pool, M: np.ndarray, margin: float) -> dict:
  w = _choose(pool, 0)
  i = pool.index(w)
  best, gain = i, 0.0
  for j, h in enumerate(pool):
    if j != i and h["val_loss"] <= w["val_loss"] + margin and M[i, j] - M[j, i] > gain:
      best, gain = j, M[i, j] - M[j, i]
  return pool[best]


def analyze(split: str, probe_dir: str, climb_dir: str) -> str:
  rows = {"shipped (coverage rule)": [], "shipped + z(gen_asym)": [], "shipped + z(gen_in)": [],
          "climb, margin 0.1": [], "climb, margin 0.2": []}
  changed = []
  for path in sorted(glob.glob(os.path.join(climb_dir, "*.json"))):
    probe = json.load(open(path))
    cat = json.load(open(os.path.join(probe_dir, os.path.basename(path))))
    pool = _pool(cat["cands"], 0)
    assert [r["label"] for r in pool] == probe["labels"], cat["name"]
    M = np.asarray(probe["M"])
    s = signals(M)
    picks = {"shipped (coverage rule)": _choose(pool, 0), "shipped + z(gen_asym)": _zsum_with(pool, s["gen_asym"]),
             "shipped + z(gen_in)": _zsum_with(pool, s["gen_in"]), "climb, margin 0.1": _climb(pool, M, 0.1),
             "climb, margin 0.2": _climb(pool, M, 0.2)}
    for k, r in picks.items():
      rows[k].append(r)
    base = picks["shipped (coverage rule)"]
    moves = {k: r["label"] for k, r in picks.items() if r is not base}
    if moves:
      changed.append(f"{cat['name']}: {base['label']!r} ({'name' if base['names'] else 'miss'}) -> "
                     + ", ".join(f"{k}: {v!r}" for k, v in moves.items()))
  table = [{"rule": k, "names": sum(r["names"] for r in v), "of": len(v),
            "median heldout AUC": float(np.median([r["auc"] for r in v if r["auc"] is not None]))}
           for k, v in rows.items()]
  notes = ("Plan and adoption rule (>= 66 of 108, median AUC >= 0.9) committed before the run: "
           "experiments/naming/plan_climb.md. Categories whose label any rule changes:\n\n"
           + "\n".join(f"- {c}" for c in changed))
  md = common.write_table(f"naming_climb_{split}", table, ["rule", "names", "of", "median heldout AUC"],
                          f"Climbing from a member to its category, {split} half ({len(rows['climb, margin 0.1'])} "
                          "categories)", notes,
                          command=f"python experiments/naming/probes/naming_climb.py --split {split} --analyze")
  print(md)
  return md


if __name__ == "__main__":
  import argparse
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--split", default="tune")
  ap.add_argument("--analyze", action="store_true")
  a = ap.parse_args()
  probes = os.path.join(common.HERE, "runs", "naming_setpool", a.split)
  out_dir = os.path.join(common.HERE, "runs", "naming_climb", a.split)
  os.makedirs(out_dir, exist_ok=True)
  if a.analyze:
    analyze(a.split, probes, out_dir)
  else:
    run_probe(a.split, probes, out_dir)
