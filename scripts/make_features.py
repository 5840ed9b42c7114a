"""Writes the synthetic activation records under experiments/data from the corpora of install_corpora.sh.

  python scripts/make_features.py [--out experiments/data] [--seed 0] [--records 480] [--concept-records 300]

Test features (experiments/data/{animal,mammal,mammal_hardneg,chinese,number}.jsonl), one file per tuning
concept of experiments/concepts.json (experiments/data/concepts/<name>.jsonl) and a README.md with their counts.
The same corpora and seed give the same files.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tokenlabel_jax import synthetic  # pylint: disable=g-import-not-at-top

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIN_POSITIVE_LEMMAS = 40


def _kjv_text() -> str | None:
  """The whole KJV as the bible-kjv program prints it (one verse a line), or None without the program."""
  exe = shutil.which("bible")
  if exe is None:
    print("make_features: no `bible` program (Debian bible-kjv): the KJV is left out", file=sys.stderr)
    return None
  out = subprocess.run(
      [exe, "-l1000", "gen1:1-rev22:21"], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True
  )
  return out.stdout


def corpora_present(prog: str, wordnet: str, fortunes: str) -> bool:
  """Whether the Debian corpora are installed; says which is missing and how to install it otherwise."""
  for path, package in ((wordnet, "wordnet-base"), (fortunes, "fortunes")):
    if not os.path.isdir(path):
      print(f"{prog}: {path} is missing: run scripts/install_corpora.sh ({package})", file=sys.stderr)
      return False
  return True


def _write_jsonl(path: str, records: list[dict]) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    for rec in records:
      f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def _summary(records: list[dict]) -> dict:
  """Counts for the README: records per split, positive records, distinct positive words per split."""
  by_split = collections.Counter(r["split"] for r in records)
  positive = [r for r in records if any(a > 0 for a in r["activations"])]
  words = {"train": set(), "heldout": set()}
  for r in positive:
    for tok, act in zip(r["tokens"], r["activations"]):
      if act > 0:
        words[r["split"]].add(r.get("concept_word") or tok.strip().lower())
  sources = collections.Counter(r.get("source", "") for r in records)
  return {
      "records": len(records),
      "train": by_split["train"],
      "heldout": by_split["heldout"],
      "positive_records": len(positive),
      "words_train": len(words["train"]),
      "words_heldout": len(words["heldout"]),
      "sources": dict(sorted(sources.items())),
  }


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(REPO, "experiments", "data"))
  parser.add_argument("--concepts", default=os.path.join(REPO, "experiments", "concepts.json"))
  parser.add_argument("--wordnet", default=synthetic.WORDNET_DIR)
  parser.add_argument("--fortunes", default=synthetic.FORTUNES_DIR)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--records", type=int, default=480, help="records per test feature")
  parser.add_argument("--concept-records", type=int, default=300, help="records per tuning concept")
  args = parser.parse_args(argv)

  if not corpora_present("make_features", args.wordnet, args.fortunes):
    return 2

  start = time.time()
  wn = synthetic.WordNet(args.wordnet)
  english = synthetic.load_english_sentences(args.fortunes, _kjv_text())
  corpus = synthetic.Corpus.build(wn, english)
  print(f"corpus: {', '.join(f'{k} {len(v)} sentences' for k, v in sorted(english.items()))}")

  summaries: dict[str, dict] = {}
  builders = {
      "animal": synthetic.animal,
      "mammal": synthetic.mammal,
      "mammal_hardneg": synthetic.mammal_hardneg,
      "number": synthetic.number,
  }
  # Each feature gets its own seed, so adding one does not change the others.
  for i, (name, build) in enumerate(builders.items()):
    records = build(corpus, seed=args.seed * 1000 + i, n_records=args.records)
    _write_jsonl(os.path.join(args.out, f"{name}.jsonl"), records)
    summaries[f"{name}.jsonl"] = _summary(records)
  zh = synthetic.load_chinese_passages(args.fortunes)
  records = synthetic.chinese(zh, [s for v in english.values() for s in v], seed=args.seed * 1000 + 99,
                              n_records=args.records)
  _write_jsonl(os.path.join(args.out, "chinese.jsonl"), records)
  summaries["chinese.jsonl"] = _summary(records)

  with open(args.concepts, encoding="utf-8") as f:
    spec = json.load(f)
  glosses = {}
  for i, c in enumerate(spec["concepts"]):
    lemma, sense = c["synset"]
    concept = synthetic.build_concept(
        wn, c["name"], [(lemma, sense)], proper=c.get("proper", False), noun_check=c.get("noun_check", True)
    )
    if len(concept.positives) < MIN_POSITIVE_LEMMAS:
      print(f"make_features: {c['name']} has only {len(concept.positives)} positive words", file=sys.stderr)
      return 1
    records = synthetic.concept_records(corpus, concept, seed=args.seed * 1000 + 100 + i,
                                        n_records=args.concept_records)
    _write_jsonl(os.path.join(args.out, "concepts", f"{c['name']}.jsonl"), records)
    summaries[f"concepts/{c['name']}.jsonl"] = _summary(records) | {"lemmas": len(concept.positives)}
    glosses[c["name"]] = f"{lemma}.n.{sense:02d}: {wn.synset(wn.sense(lemma, sense)).gloss.split(';')[0]}"
  elapsed = time.time() - start

  command = "python scripts/make_features.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
  lines = [
      "# Synthetic activation records",
      "",
      "Made by `bash scripts/install_corpora.sh && " + command + "` (seed "
      f"{args.seed}); see tokenlabel_jax/synthetic/ for how. Do not edit by hand.",
      "",
      "Sources: WordNet 3.0 (Debian wordnet-base) for concept words, English sentences from Debian fortunes /",
      "fortunes-min and the KJV bible (bible-kjv), Chinese lines from fortunes-zh. Positive words are split 75/25",
      "into train/heldout per feature (chinese: its passages are split); `words` counts distinct positive words",
      "(digit runs included for number, CJK chunks for chinese).",
      "",
      "| file | records | train | heldout | positive records | words train | words heldout | WordNet lemmas |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for name, s in summaries.items():
    lines.append(
        f"| {name} | {s['records']} | {s['train']} | {s['heldout']} | {s['positive_records']} | "
        f"{s['words_train']} | {s['words_heldout']} | {s.get('lemmas', '')} |"
    )
  lines += [
      "",
      "Known noise: positives follow WordNet's first noun sense, so a few are odd in context (male, female,",
      "queen and giant are animals; human and mankind are mammals; a software bug is an insect; KJV fitches,",
      "a plant, read as polecats), and names tagged as cities may be people (Nancy). Substituted sentences",
      "put a sampled word into a noun slot, so they can read oddly; their negatives use nouns outside the",
      "concept of similar familiarity.",
      "",
      "Tuning concepts (synset: gloss):",
      "",
  ]
  lines += [f"- {name}: {g}" for name, g in glosses.items()]
  lines.append("")
  with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8") as f:
    f.write("\n".join(lines))
  print(f"wrote {len(summaries)} files to {args.out} in {elapsed:.1f}s")
  return 0


if __name__ == "__main__":
  sys.exit(main())
