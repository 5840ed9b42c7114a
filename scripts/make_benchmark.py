"""Builds the naming benchmark: WordNet noun categories chosen by rule, split by hash, and their activation records.

  python scripts/make_benchmark.py [--out experiments/data/benchmark] [--records 300] [--seed 0] [--list-only]
  python scripts/make_benchmark.py --fresh      # the fresh set: experiments/naming/categories_fresh.json
  python scripts/make_benchmark.py --norms      # the norms set: experiments/naming/norms.json -> experiments/data/norms
  python scripts/make_benchmark.py --norms norms2   # the second norms set: norms2.json -> experiments/data/norms2
  python scripts/make_benchmark.py --norms --siblings   # the same categories with their siblings as near misses

Writes experiments/naming/categories.json (every category, its split, the names that count as naming it; the
tuning list is the "tune" half of it) and one JSONL feature per category under --out. With --fresh: the categories
the same rule chooses at lower thresholds (naming.FRESH_THRESHOLDS) that are not in categories.json, all of them in
the split "fresh" (a test set declared after the benchmark's tuning, before any of it was labeled). The categories
tuned on in earlier work (experiments/concepts.json and the paper's animal, mammal and number) are left out.
Per-category synonyms come from experiments/naming/synonyms.json, written before any tuning (the fresh set's before
any of it was labeled). With --norms: the categories declared by hand in experiments/naming/norms.json (everyday
categories of the kind category-norm studies list), each checked to be in none of the sets above, written to
categories_norms.json with their names (the synset's lemmas and the declared synonyms) and to experiments/data/norms;
--norms NAME does the same for NAME.json (each such set checked against every other set, the first norms set too).
With --siblings (and --norms): the same categories and seeds, each with its WordNet siblings as hard negatives in the
text at activation 0.2 (synthetic.NEAR_MISS; experiments/naming/plan_siblings.md), to experiments/data/NAME_siblings;
the category list is left as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import make_features  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import naming, synthetic  # pylint: disable=g-import-not-at-top

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC_DIR = os.path.join(REPO, "experiments", "naming")
PAPER_ROOTS = (("animal", 1), ("mammal", 1)) + synthetic.NUMBER_ROOTS


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(REPO, "experiments", "data", "benchmark"))
  parser.add_argument("--records", type=int, default=300)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--list-only", action="store_true", help="write categories.json only")
  parser.add_argument("--fresh", action="store_true", help="the fresh set instead (categories_fresh.json)")
  parser.add_argument("--norms", nargs="?", const="norms", default=None, metavar="NAME",
                      help="a hand-declared set instead (NAME.json -> categories_NAME.json; NAME: norms, norms2)")
  parser.add_argument("--siblings", action="store_true",
                      help="with --norms: each category's WordNet siblings as near-miss negatives (NAME_siblings)")
  args = parser.parse_args(argv)
  if args.siblings and not args.norms:
    parser.error("--siblings makes a norms set's records again: pass it with --norms [NAME]")
  if args.norms and args.out == parser.get_default("out"):
    args.out = os.path.join(REPO, "experiments", "data", args.norms + ("_siblings" if args.siblings else ""))
  if not make_features.corpora_present("make_benchmark", synthetic.WORDNET_DIR, synthetic.FORTUNES_DIR):
    return 2
  start = time.time()
  wn = synthetic.WordNet()
  corpus = synthetic.Corpus.build(wn, synthetic.load_english_sentences(synthetic.FORTUNES_DIR,
                                                                        make_features._kjv_text()))
  with open(os.path.join(REPO, "experiments", "concepts.json"), encoding="utf-8") as f:
    tuned_before = [tuple(c["synset"]) for c in json.load(f)["concepts"]]
  exclude = [wn.sense(l, s) for l, s in tuned_before + list(PAPER_ROOTS)]
  with open(os.path.join(SPEC_DIR, "synonyms.json"), encoding="utf-8") as f:
    synonyms = {k: v for k, v in json.load(f).items() if not k.startswith("_")}
  if args.norms:
    spec, doc = norms_categories(wn, corpus.freq, exclude, args.norms)
  elif args.fresh:
    with open(os.path.join(SPEC_DIR, "categories.json"), encoding="utf-8") as f:
      benchmark = [c["synset"] for c in json.load(f)["categories"]]
    cats = naming.fresh_categories(wn, corpus.freq, exclude, benchmark)
    doc = (f"The fresh set: naming.select_categories at {naming.FRESH_THRESHOLDS}, less the benchmark's categories; "
           "one test set, declared before any of it was labeled ('hash half' is the benchmark's split rule, for "
           "reference only).")
  else:
    cats = naming.select_categories(wn, corpus.freq, exclude)
    doc = __doc__.strip().splitlines()[0] + " Split: naming.split_of (SHA-256 of the synset name)."
  if not args.norms:
    spec = [category_row(wn, c, synonyms, args.fresh) for c in cats]
  splits = [args.norms] if args.norms else ["fresh"] if args.fresh else ["tune", "test"]
  counts = {s: sum(1 for c in spec if c["split"] == s) for s in splits}
  out_name = (f"categories_{args.norms}.json" if args.norms else "categories_fresh.json" if args.fresh
              else "categories.json")
  if not args.siblings:  # the same list as the set's own; written by the run without --siblings
    with open(os.path.join(SPEC_DIR, out_name), "w", encoding="utf-8") as f:
      json.dump({"_doc": doc, "counts": counts, "categories": spec}, f, indent=1, ensure_ascii=False)
  print(f"{len(spec)} categories ({', '.join(f'{v} {k}' for k, v in counts.items())})")
  if args.list_only:
    return 0
  for i, c in enumerate(spec):
    lemma, sense = c["synset"].split(".n.")
    concept = synthetic.build_concept(wn, c["name"], [(lemma, int(sense))], proper=c.get("proper", False),
                                      siblings=args.siblings)
    # The seed comes from the synset name, so adding a category changes no other category's records.
    seed = args.seed * 1_000_003 + int.from_bytes(c["synset"].encode()[:6].ljust(6, b"_"), "little") % 1_000_000
    records = synthetic.concept_records(corpus, concept, seed=seed, n_records=args.records)
    make_features._write_jsonl(os.path.join(args.out, f"{c['name']}.jsonl"), records)
    if (i + 1) % 20 == 0 or i + 1 == len(spec):
      print(f"  {i + 1}/{len(spec)} features written ({time.time() - start:.0f}s)", flush=True)
  return 0


def category_row(wn, c: naming.Category, synonyms: dict, fresh: bool) -> dict:
  """A category chosen by rule as categories.json (or categories_fresh.json) lists it, with the names that count."""
  names = list(dict.fromkeys(list(c.names) + [naming.normalize(s) for s in synonyms.get(c.synset, [])]))
  split = {"split": "fresh", "hash half": c.split} if fresh else {"split": c.split}
  return {"name": c.name, "synset": c.synset, **split, "names": names,
          "gloss": wn.synset(wn.sense(c.lemma, c.sense)).gloss.split(";")[0],
          "positive_lemmas": c.n_positive_lemmas, "in_corpus": c.n_in_corpus}


def norms_categories(wn, corpus_freq, exclude, set_name: str = "norms") -> tuple[list[dict], str]:
  """A hand-declared set (`set_name`.json), each category checked to be new (not tuned on, in no other category list:
  the benchmark, the fresh set, another norms set; compared by synset) and given its names: the synset's lemmas and
  the synonyms declared with it."""
  spec_path = os.path.join(SPEC_DIR, f"{set_name}.json")
  if not os.path.exists(spec_path):
    raise SystemExit(f"make_benchmark: no {spec_path} declares the set {set_name!r}: write it first (as norms.json), "
                     "or pass --norms without a name for the first norms set")
  with open(spec_path, encoding="utf-8") as f:
    declared = json.load(f)
  taken = {}
  others = sorted(n for n in os.listdir(SPEC_DIR) if n.startswith("categories") and n.endswith(".json")
                  and n != f"categories_{set_name}.json")
  for name in others:
    with open(os.path.join(SPEC_DIR, name), encoding="utf-8") as f:
      for synset in (c["synset"] for c in json.load(f)["categories"]):
        lemma, sense = synset.split(".n.")
        taken[wn.sense(lemma, int(sense))] = f"{synset} of {name}"
  out, exclude = [], set(exclude)
  for c in declared["categories"]:
    lemma, sense = c["synset"]
    offset = wn.sense(lemma, sense)
    if offset in exclude or offset in taken:
      raise SystemExit(f"make_benchmark: {set_name} category {c['name']} ({lemma}.n.{sense:02d}) is already in "
                       f"{taken.get(offset, 'concepts.json or the paper')}: take it out of {set_name}.json")
    positives, _ = synthetic.concept_lemmas(wn, [offset], proper=c.get("proper", False))
    names = list(dict.fromkeys([w.replace("_", " ").lower() for w in wn.lemmas(offset)]
                               + [naming.normalize(s) for s in c["synonyms"]]))
    out.append({"name": c["name"], "synset": f"{lemma}.n.{sense:02d}", "split": set_name, "norm": c["norm"],
                "names": names, "proper": c.get("proper", False),
                "gloss": wn.synset(offset).gloss.split(";")[0], "positive_lemmas": len(positives),
                "in_corpus": sum(1 for p in positives if corpus_freq[p.lower()] > 0)})
  return out, declared["_doc"]


if __name__ == "__main__":
  sys.exit(main())
