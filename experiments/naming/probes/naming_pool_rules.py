"""Choice rules over the saved naming_pool probes (see naming_pool.py): which one names the category most often."""

from __future__ import annotations

import glob
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

from experiments import common  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import coverage  # pylint: disable=g-import-not-at-top

SIGNALS = {  # higher is better
    "typ_pos": lambda r: r["typ_pos"],
    "typ_all": lambda r: r["typ_all"],
    "typ_first": lambda r: r["typ_first"],
    "typ_first - typ_neg": lambda r: r["typ_first"] - r["typ_neg"],
    "typ_pos - typ_neg": lambda r: r["typ_pos"] - r["typ_neg"],
    "typ_all - typ_neg": lambda r: r["typ_all"] - r["typ_neg"],
    "lrg": lambda r: r["lrg"],
    "set_pos": lambda r: r["set_pos"],
    "set_pos - set_neg": lambda r: r["set_pos"] - r["set_neg"],
}


def by_loss(cs, k):
  return sorted(cs, key=lambda r: r["val_loss"])[:k]


def zsum(cs, keys, k, weights=None):
  pool = by_loss(cs, k)
  weights = weights or [1.0] * len(keys)
  total = sum(w * coverage.zscore([SIGNALS[key](r) if key != "-val_loss" else -r["val_loss"] for r in pool])
              for key, w in zip(keys, weights))
  return pool[int(np.argmax(total))]


def rules() -> dict:
  out = {"lowest validation loss (the exact scan)": lambda cs: by_loss(cs, 1)[0],
         "shipped: most typical of best 4 within 0.1": lambda cs: max(
             [r for r in by_loss(cs, 4) if r["val_loss"] <= by_loss(cs, 1)[0]["val_loss"] + 0.1],
             key=lambda r: r["typ_pos"])}
  for k in (4, 8, 16, 32):
    for name, f in SIGNALS.items():
      out[f"best {k} by val loss, highest {name}"] = lambda cs, k=k, f=f: max(by_loss(cs, k), key=f)
  for k in (8, 16, 32):
    for keys in (["-val_loss", "typ_all - typ_neg"], ["-val_loss", "typ_all"], ["-val_loss", "lrg", "typ_all"],
                 ["-val_loss", "typ_first"], ["-val_loss", "typ_pos"], ["-val_loss", "typ_pos - typ_neg"],
                 ["-val_loss", "lrg", "typ_all - typ_neg"], ["lrg", "typ_all"], ["lrg", "typ_all - typ_neg"],
                 ["-val_loss", "typ_all", "set_pos"], ["lrg", "typ_all", "set_pos"]):
      out[f"best {k} by val loss, highest z-sum of {' + '.join(keys)}"] = lambda cs, k=k, keys=keys: zsum(cs, keys, k)
  return out


def analyze(split: str, probe_dir: str, only: list[str] | None = None) -> str:
  cats = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(probe_dir, "*.json")))]
  table = []
  for name, rule in rules().items():
    if only and name not in only:
      continue
    chosen = [rule(c["cands"]) for c in cats]
    table.append({"rule": name, "names": sum(r["names"] for r in chosen), "of": len(cats),
                  "median heldout AUC": float(np.median([r["auc"] for r in chosen if r["auc"] is not None]))})
  ceiling = {f"a name among the best {k} by val loss": sum(any(r["names"] for r in by_loss(c["cands"], k))
                                                           for c in cats)
             for k in (1, 4, 8, 16, 32)}
  ceiling["a name anywhere in the pool"] = sum(any(r["names"] for r in c["cands"]) for c in cats)
  notes = "Ceiling (how often the pool holds a name at all): " + "; ".join(f"{k}: {v}" for k, v in ceiling.items())
  md = common.write_table(f"naming_pool_{split}", table, ["rule", "names", "of", "median heldout AUC"],
                          f"Choice rules over a wider candidate pool, {split} half ({len(cats)} categories)", notes,
                          command=f"python experiments/naming/probes/naming_pool.py --split {split} --analyze",
                          summary={"ceiling": ceiling, "categories": len(cats)})
  print(md)
  return md
