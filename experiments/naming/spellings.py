"""The ask rule scoring an answer in every spelling, and asked with the feature's commonest words (plan_spellings.md).

  python experiments/naming/spellings.py --split tune    # the pilot: a rule goes on only with at least 63 of 108
  python experiments/naming/spellings.py --split test    # then, for the rule that went on: test + fresh decide
  python experiments/naming/spellings.py --split fresh

Why: the ask rule takes the better of "c" and "C" as the answer, and Qwen2.5 holds many words as one token only with a
leading space (" furniture"), so a long word loses for how it is split; and its 12 words are drawn uniformly from the
feature's distinct positive words, rare ones included. Everything else is `ask_end~0.2`: the candidates `chooser.py`
stored for each category (nothing is labeled again), the 0.2 window, each answer scored with its end. Writes
experiments/results/naming_spellings_<split>_<model>.{md,json}; a killed run resumes from that file.
"""

from __future__ import annotations

import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from experiments.naming import chooser  # pylint: disable=g-import-not-at-top
from experiments.naming import specific_ask  # pylint: disable=g-import-not-at-top

RULES = ("spell~0.2", "spell_common~0.2")  # in the plan's order: a tie goes to the first
BASE = "ask_end~0.2"
TUNE_BAR = 63  # 6 more than ask_end~0.2's 57 of 108
DECISION_MORE = 12  # over the test half and the fresh set together: 6 per set


def common_words(feature, threshold: float = 0.0, n: int = chooser.N_WORDS) -> list[str]:
  """The feature's n commonest positive words (lower-cased alphabetic training tokens, as `coverage.positive_words`
  reads them; ties alphabetical), in alphabetical order."""
  from tokenlabel_jax import data as data_lib  # pylint: disable=import-outside-toplevel
  feature = data_lib.assign_splits(feature, threshold=threshold)
  counts = collections.Counter(w.lower() for r in feature.records if r.split == "train"
                               for w, a in ((data_lib.word_of(t), a) for t, a in zip(r.tokens, r.activations))
                               if a > threshold and w.isalpha())
  return sorted(sorted(counts, key=lambda w: (-counts[w], w))[:n])


def score_row(m, row: dict, words: list[str]) -> dict:
  """The stored row with both rules' scores for the candidates in the ask rule's window and every rule's choice."""
  from tokenlabel_jax import coverage  # pylint: disable=import-outside-toplevel
  cands = row["candidates"]
  window = [dict(c) for c in cands if chooser.in_window(cands, c)]
  labels = [c["label"] for c in window]
  for key, shown in (("spell", row["words"]), ("spell_common", words)):
    for c, v in zip(window, coverage.ask_scores(m, shown, labels, end=True, any_spelling=True) if shown else []):
      c[key] = float(v)
  asked = chooser.end_rule(cands)
  out = {"category": row["category"], "names": row["names"], "words": row["words"], "common words": words,
         BASE: asked["label"], f"{BASE} AUC": asked["heldout_auc"], "window": window}
  for rule in RULES:
    chosen = chooser.best(window, rule.split("~")[0], lambda i, _: True) if window else asked
    out |= {rule: chosen["label"], f"{rule} AUC": chosen["heldout_auc"]}
  return out


def table(rows: list[dict]) -> list[dict]:
  """Per rule: categories named (the judge, and the floor without synonyms above or below), gained and lost against
  the ask rule, median held-out AUC; then how often a name is among the words shown, and the window's ceiling."""
  from experiments.naming import size_principle  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import naming  # pylint: disable=import-outside-toplevel
  cats = {c["name"]: c for split in ("tune", "test", "fresh") for c in common.categories(split)}
  strict = {r["category"]: size_principle.strict_names(cats[r["category"]]) for r in rows}
  out = []
  for rule in (BASE, *RULES):
    named = [naming.names_category(r[rule], r["names"]) for r in rows]
    base = [naming.names_category(r[BASE], r["names"]) for r in rows]
    gained = sum(b and not a for a, b in zip(base, named))
    lost = sum(a and not b for a, b in zip(base, named))
    out.append({"rule": rule, "names": sum(named),
                "names (floor)": sum(naming.names_category(r[rule], strict[r["category"]]) for r in rows),
                "median held-out AUC": specific_ask.median_auc(r[f"{rule} AUC"] for r in rows)}
               | ({"gained": gained, "lost": lost, "sign test p": common.sign_test(gained, lost)}
                  if rule != BASE else {}))
  for key, what in (("words", "the 12 drawn words (ask_end~0.2, spell~0.2)"),
                    ("common words", "the 12 commonest words (spell_common~0.2)")):
    out.append({"rule": f"a name among {what}", "names": sum(
        any(naming.names_category(w, r["names"]) for w in r[key]) for r in rows)})
  out.append({"rule": "a name in the window (ceiling)", "names": sum(
      any(naming.names_category(c["label"], r["names"]) for c in r["window"]) for r in rows)})
  return out


def verdict(split: str, got: list[dict], total: int, n: int) -> tuple[str, str | None]:
  """The plan's decision for this split, and the rule that went on from the tuning half (None: neither)."""
  if n < total:
    return f"Partial: {n} of {total}.", None
  named = {r["rule"]: r["names"] for r in got}
  if split == "tune":
    passing = [r for r in RULES if named[r] >= TUNE_BAR]
    chosen = max(passing, key=lambda r: (named[r], -RULES.index(r))) if passing else None
    return (f"The pilot's bar (plan_spellings.md): at least {TUNE_BAR} of {total}. "
            + ", ".join(f"`{r}` names {named[r]}" for r in RULES) + ": "
            + (f"`{chosen}` goes on to the test half and the fresh set." if chosen
               else "neither meets it; no other split is scored and nothing changes.")), chosen
  return ("The decision is taken over the test half and the fresh set together (plan_spellings.md): at least "
          f"{DECISION_MORE} more than `{BASE}` over the 249."), None


def main():
  from tokenlabel_jax import data as data_lib  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
  args, name, settings, stored, rows = chooser.rescoring_run("naming_spellings", __doc__, "went on",
                                                             "plan_spellings.md")
  paths = {c["name"]: c["path"] for c in common.categories(args.split)}
  m = load_model(args.model)
  chooser.rescore(stored, rows,
                  lambda row: score_row(m, row, common_words(data_lib.load_features(paths[row["category"]])[0])),
                  lambda r: f"{r[BASE]!r} -> {r[RULES[0]]!r} / {r[RULES[1]]!r}",
                  lambda rows: write(name, settings, rows, len(stored)))


def write(name: str, settings: dict, rows: list[dict], total: int) -> None:
  got = table(rows)
  text, chosen = verdict(settings["split"], got, total, len(rows))
  common.write_table(name, got, ["rule", "names", "names (floor)", "median held-out AUC", "gained", "lost",
                                 "sign test p"],
                     f"The ask rule scoring every spelling, and asked with the commonest words ({settings['split']}, "
                     f"{settings['model']})", text, summary=dict(settings, **{"went on": chosen}, rows=rows))


if __name__ == "__main__":
  main()
