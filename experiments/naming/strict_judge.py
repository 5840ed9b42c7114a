"""The README's naming counts again, with the judge's synonyms that WordNet puts above or below the category left out
(no model is run).

  python experiments/naming/strict_judge.py   # after scripts/make_benchmark.py (all sets) and the Debian WordNet

The automatic judge accepts a category's lemmas, their inflections and a few synonyms written down before any run
(`synonyms.json`). Read by a person (`reader.py`), it counted more than the reader did, and some of the difference is
synonyms that name a parent or a child of the category (herb: ' plant', dish: ' food', airplane: ' jet'). This recount
is mechanical, so it does not rest on one reader: every accepted name that is not a lemma of the category's own synset
but is a lemma of a synset among its hypernyms or hyponyms (any depth, WordNet 3.0 as Debian ships it) is dropped, and
the stored labels of every run behind the README's naming figures are judged again, with the chance check counting
words as the README counts. Written after the reading; the rule has no setting. Synonyms of another kind (scientist:
' science', hate: ' anger') stay, so this is a bound on the vertical part of the difference only.
Writes experiments/results/naming_strict_judge.{md,json}.
"""

from __future__ import annotations

import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from experiments.naming import chance_floor, word_bound  # pylint: disable=g-import-not-at-top
from tokenlabel_jax import naming  # pylint: disable=g-import-not-at-top
from tokenlabel_jax.synthetic.wordnet import WordNet  # pylint: disable=g-import-not-at-top


def _key(name: str) -> str:
  return name.lower().replace(" ", "_")


@functools.lru_cache(maxsize=None)
def _wordnet() -> WordNet:
  return WordNet()


def vertical_synonyms(synset: str, names: list[str]) -> list[str]:
  """The accepted names that are no lemma of `synset` ("herb.n.01") but a lemma of one of its hypernyms or
  hyponyms."""
  wn = _wordnet()
  lemma, _, number = synset.rsplit(".", 2)
  offset = wn.sense(lemma, int(number))
  own = {_key(w) for w in wn.lemmas(offset)}
  above_below = (wn.hypernym_closure(offset) | wn.hyponym_closure(offset)) - {offset}
  return [n for n in names if _key(n) not in own
          and any(o in above_below for o in wn.synsets_for(_key(n)))]


def main() -> int:
  rows, counts, dropped = [], {}, {}
  for set_name, result, col in chance_floor.RUNS:
    cats = {c["name"]: c for c in common.categories(set_name)}
    run = result + (f" ({col.strip()})" if col else "")
    named = strict = 0
    for name, r in chance_floor.stored_rows(result).items():
      c = cats[name]
      if name not in dropped:
        dropped[name] = vertical_synonyms(c["synset"], c["names"])
      auc = r[f"{col}heldout AUC"] if f"{col}heldout AUC" in r else r[f"{col}AUC"]
      label = r[f"{col}label"] or r.get(f"{col}best_candidate")
      given = bool(label) and word_bound.given(auc, c["path"])
      judge = given and naming.names_category(label, c["names"])
      kept = given and naming.names_category(label, [n for n in c["names"] if n not in dropped[name]])
      named, strict = named + judge, strict + kept
      if judge and not kept:
        rows.append({"set": set_name, "run": run, "category": name, "label": label,
                     "synonyms dropped": ", ".join(dropped[name])})
    counts[run] = {"set": set_name, "categories": len(cats), "judge": named, "without vertical synonyms": strict}
  notes = ("Categories named, labels given (the chance check counting words), the judge as the README counts -> "
           "without the synonyms WordNet puts above or below the category: "
           + "; ".join(f"{k}: {v['judge']} -> {v['without vertical synonyms']} of {v['categories']}"
                       for k, v in counts.items())
           + f". Categories with a synonym dropped: {sum(bool(v) for v in dropped.values())} of {len(dropped)}.")
  common.write_table("naming_strict_judge", rows, ["set", "run", "category", "label", "synonyms dropped"],
                     "The naming counts with the judge's vertical synonyms left out", notes,
                     summary={"runs": counts, "dropped": {k: v for k, v in dropped.items() if v}})
  return 0


if __name__ == "__main__":
  sys.exit(main())
