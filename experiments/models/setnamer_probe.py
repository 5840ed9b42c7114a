"""Probe, second pass: the set namer's view of the probe's kept tokens ("w1, w2, w3 and w4 are kinds of ___"), for
rules that ask a stronger model what a set of members has in common.

  python experiments/models/setnamer_probe.py --model qwen2.5-coder-1.5b --split tune
  python experiments/models/setnamer_probe.py --model qwen2.5-coder-1.5b --split tune --analyze

Reads experiments/runs/models_probe/<model>_namer_<split>.json (naming_probe.py) and adds to every kept token:
  set4   mean log P(token | few-shot lines + "w1, w2, w3 and w4 are kinds of") over 8 sets of 4 positive training
         words (the shipped coverage rule's set_pos)
  set10  the same over 4 sets of 10 positive training words
Writes <model>_namer_<split>_sets.json beside it; --analyze compares rules on it (tuning half only).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top


def main():
  args, m, _ = common.setup("models_probe", __doc__, launcher_steps=True, **{
      "--split": dict(default="tune"), "--data": dict(default=os.path.join(common.DATA, "benchmark")),
      "--analyze": dict(action="store_true")})
  from tokenlabel_jax import coverage, data as data_lib  # pylint: disable=import-outside-toplevel
  src = os.path.join(args.out, f"{m.cfg.name}_namer_{args.split}.json")
  dst = src[:-5] + "_sets.json"
  if args.analyze:
    analyze(dst)
    return
  probes = json.load(open(src))
  done = {p["name"]: p for p in (json.load(open(dst)) if os.path.exists(dst) else [])}
  t0 = time.time()
  for i, p in enumerate(probes):
    if p["name"] in done:
      continue
    feature = data_lib.load_features(os.path.join(args.data, p["name"] + ".jsonl"))[0]
    words = coverage.positive_words(feature)
    ids = np.asarray([t["id"] for t in p["tokens"]])
    for key, n_sets, k in (("set4", 8, 4), ("set10", 4, 10)):
      sets = coverage.word_sets(words, n_sets, 0, k=min(k, len(words)))
      values = coverage.set_namer(m, sets)
      for t, v in zip(p["tokens"], values[ids]):
        t[key] = float(v)
    done[p["name"]] = p
    print(f"{i + 1}/{len(probes)} {p['name']} ({time.time() - t0:.0f}s)", flush=True)
    with open(dst + ".tmp", "w") as f:
      json.dump(list(done.values()), f, ensure_ascii=False)
    os.replace(dst + ".tmp", dst)


def analyze(path: str) -> None:
  probes = json.load(open(path))

  def z(x):
    x = np.asarray(x, float)
    return (x - x.mean()) / (x.std() + 1e-9)

  def rule(keys, k, weights=None):
    def pick(toks):
      top = sorted((t for t in toks if t["word_like"]), key=lambda t: t["val_loss"])[:k]
      s = sum(w * z([t[key] for t in top]) for key, w in zip(keys, weights or [1] * len(keys)))
      return top[int(np.argmax(s))]
    return pick

  rows = []
  for keys in (["set4"], ["set10"], ["nat_trv"], ["set4", "nat_trv"], ["set10", "nat_trv"], ["set4", "set10"]):
    for k in (3, 5, 10, 20, 32):
      pick = rule(keys, k)
      hits = sum(pick(p["tokens"])["names"] for p in probes)
      rows.append((hits, f"highest {' + '.join(keys)} (z-summed) among the best {k} by validation loss"))
  lines = [f"# Set-namer rules on {os.path.basename(path)} ({len(probes)} categories)", "",
           f"shipped (coverage rule): {sum(p['shipped']['names'] for p in probes)}", "",
           "| rule | names the category |", "|---|---|"]
  lines += [f"| {name} | {hits} |" for hits, name in sorted(rows, reverse=True)]
  text = "\n".join(lines)
  print(text)
  with open(path[:-5] + "_rules.md", "w") as f:
    f.write(text + "\n")


if __name__ == "__main__":
  main()
