"""What counting one word's tokens as one piece of evidence does to the chance check (no model is run).

  python experiments/naming/word_bound.py              # after scripts/make_benchmark.py and --fresh (the records)
  python experiments/naming/word_bound.py --sae runs/sae   # also the README's 200-latent runs

A label is withheld when the one-sided 95% lower bound of its held-out AUC is at most 0.5. Until 2026-12-07 the bound
counted each held-out token once. A discriminator that reads only the word gives every token of one word the same
score, so since then it counts Kish's effective number of words per class (`Split.effective_counts`). Every run
behind the README's figures used such a discriminator (the namer, and the ask and set rules scored with it).

Two parts:
1. The null: for every category of each set (and the 200 latents), a label unrelated to the feature, a random score
   per word, 200 draws: how often does it pass the check counting tokens, and counting words? 5% is nominal.
2. The stored runs (the same runs as chance_floor.py): the held-out split redrawn (the draw depends on the records
   only), the bound recomputed both ways from the stored held-out AUC, and the labels withheld and the names lost.
Writes experiments/results/naming_word_bound.{md,json}.
"""

from __future__ import annotations

import functools
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from experiments.naming import chance_floor  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import data as data_lib, evaluation, labeling, selection  # pylint: disable=g-import-not-at-top
from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=g-import-not-at-top
from tokenlabel_jax.splits import Split  # pylint: disable=g-import-not-at-top


@functools.lru_cache(maxsize=None)  # several runs share a category's records
def heldout_split(path: str, lcfg: LabelConfig) -> Split:
  examples = labeling.sample_split(data_lib.load_features(path)[0], lcfg, "heldout")
  return Split(examples, None, np.asarray([e.target for e in examples], np.float32),
               np.asarray([e.positive for e in examples]))


def distinct_tokens(split: Split) -> tuple[int, int]:
  """(positives, negatives) counting each token once: the check's counts until 2026-12-07."""
  return tuple(len({(e.record, e.index) for e in split.examples if e.positive == want}) for want in (True, False))


def bounds(auc: float, split: Split) -> tuple[float, float]:
  """The bound counting tokens (as before) and counting words (now), both with the chance floor."""
  return (selection.auc_lower_bound(auc, *distinct_tokens(split)),
          selection.auc_lower_bound(auc, *split.effective_counts(by_word=True)))


def given(auc: float, path: str, lcfg: LabelConfig = LabelConfig()) -> bool:
  """Whether a stored label with this held-out AUC is given today: its bound counting words above the chance bar
  (a NaN AUC, a label never scored: no)."""
  return auc == auc and bounds(auc, heldout_split(path, lcfg))[1] > selection.SelectConfig().min_auc_lower


def null_rates(paths: list[str], lcfg: LabelConfig, bar: float, draws: int = 200) -> dict:
  """How often a random score per word passes the check, counting tokens and counting words."""
  rng = np.random.default_rng(0)
  passed, total = np.zeros(2), 0
  for path in paths:
    split = heldout_split(path, lcfg)
    words = [data_lib.word_of(e.tokens[e.index]) or e.tokens[e.index] for e in split.examples]
    index = {w: i for i, w in enumerate(dict.fromkeys(words))}
    word_B = np.asarray([index[w] for w in words])
    counts = [distinct_tokens(split), split.effective_counts(by_word=True)]
    for _ in range(draws):
      auc = evaluation.roc_auc(rng.normal(size=len(index))[word_B], split.positive_B)
      passed += [selection.auc_lower_bound(auc, *c) > bar for c in counts]
      total += 1
  return {"features": len(paths), "draws": total, "passed counting tokens": round(passed[0] / total, 3),
          "passed counting words": round(passed[1] / total, 3)}


def main() -> int:
  import argparse  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sae", default="", help="a tokenlabel_jax.sae run (its latents/ records)")
  args = parser.parse_args()
  lcfg, bar = LabelConfig(), selection.SelectConfig().min_auc_lower
  null = {s: null_rates([c["path"] for c in common.categories(s)], lcfg, bar)
          for s in ("tune", "test", "fresh", "norms", "norms2")}
  rows, counts = [], {}
  named_by = {}  # (set, category) -> {model: names, counting tokens and counting words}: the hindsight bound
  for set_name, result, col in chance_floor.RUNS:
    model = col.strip() or ("1.5b" if "1.5b" in result else "0.5b" if "0.5b" in result else "135m")
    stored, cats = chance_floor.stored_rows(result), {c["name"]: c for c in common.categories(set_name)}
    given = kept = named = named_after = 0
    for name, r in stored.items():
      auc = r[f"{col}heldout AUC"] if f"{col}heldout AUC" in r else r[f"{col}AUC"]
      split = heldout_split(cats[name]["path"], lcfg)
      old, new = bounds(auc, split)
      label = r[f"{col}label"] if old > bar else None  # the README's counts: the check counting tokens
      names = bool(r[f"{col}names"]) and label is not None
      given, kept = given + (label is not None), kept + (label is not None and new > bar)
      named, named_after = named + names, named_after + (names and new > bar)
      named_by.setdefault((set_name, name), {})[model] = (names, names and new > bar)
      if label is not None and new <= bar:
        rows.append({"set": set_name, "run": result + (f" ({col.strip()})" if col else ""), "category": name,
                     "label": label, "names": names, "heldout AUC": auc,
                     "positives: tokens / words": f"{distinct_tokens(split)[0]} / "
                                                  f"{split.effective_counts(by_word=True)[0]:.1f}",
                     "lower95 counting tokens": old, "lower95 counting words": new})
    counts[result + (f" ({col.strip()})" if col else "")] = {
        "set": set_name, "categories": len(stored), "labels given": given, "still given": kept, "named": named,
        "named now": named_after}
  either = [sum(v["135m"][k] or v["1.5b"][k] for v in named_by.values()) for k in (0, 1)]
  counts["either of 135m and 1.5b names it (hindsight)"] = {"categories": len(named_by), "named": either[0],
                                                            "named now": either[1]}
  notes = ("A random score per word passes the check (5% nominal), counting tokens -> counting words: "
           + "; ".join(f"{s} {v['passed counting tokens']:.1%} -> {v['passed counting words']:.1%}"
                       for s, v in null.items())
           + ". Per run: labels given and categories named, counting tokens -> counting words. "
           + "; ".join(f"{k}: {v['labels given']} -> {v['still given']} labels, named {v['named']} -> "
                       f"{v['named now']}" for k, v in counts.items() if "labels given" in v)
           + f". Either the 135M or the 1.5B model names it (hindsight), over the {len(named_by)} categories: "
           f"{either[0]} -> {either[1]}.")
  if args.sae:
    latents = {}
    for model, results in chance_floor.LATENT_RUNS.items():
      given = kept = n = 0
      for result in results:
        with open(os.path.join(common.RESULTS, result + ".json"), encoding="utf-8") as f:
          stored = json.load(f)["latents"]
        for r in stored:
          split = heldout_split(os.path.join(args.sae, "latents", r["id"] + ".jsonl"), lcfg)
          old, new = bounds(r["heldout_auc"], split)
          n, given, kept = n + 1, given + (old > bar), kept + (old > bar and new > bar)
      latents[f"200 latents ({model})"] = {"latents": n, "labels given": given, "still given": kept}
    ids = [r["id"] for r in json.load(open(os.path.join(common.RESULTS, chance_floor.LATENT_RUNS["135m"][0]
                                                        + ".json"), encoding="utf-8"))["latents"]]
    null["200 latents"] = null_rates([os.path.join(args.sae, "latents", i + ".jsonl") for i in ids], lcfg, bar)
    notes += (f" The 200 latents: a random word score passes {null['200 latents']['passed counting tokens']:.1%} -> "
              f"{null['200 latents']['passed counting words']:.1%}; labels given (medians unchanged: withheld labels "
              "keep their AUC) " + "; ".join(f"{k}: {v['labels given']} -> {v['still given']} of {v['latents']}"
                                            for k, v in latents.items()) + ".")
    counts |= latents
  common.write_table("naming_word_bound", rows, ["set", "run", "category", "label", "names", "heldout AUC",
                                                 "positives: tokens / words", "lower95 counting tokens",
                                                 "lower95 counting words"],
                     "Counting one word's tokens once: the labels the chance check withholds in stored runs", notes,
                     summary={"null": null, "runs": counts})
  return 0


if __name__ == "__main__":
  sys.exit(main())
