"""Two features that depend on the context, not on the word: the same words are positive in one sense and not in
the other, so no label of the word alone can separate them (experiments/context/README.md).

  python experiments/context/make_context_features.py  # writes experiments/data/context/{food_sense,team_sense}.jsonl

Each word appears in every template of both senses: positive (activation 1.0) in the feature's sense, a near miss
(0.25, below the threshold 0.5 the study labels with, drawn first by `--negatives=near_miss`) in the other. Words
and templates are split before any run: the first 12 words and the first 5 templates of each sense make the training
records, the last 8 words and the last 5 templates the held-out ones, so a held-out example is a new word in a new
sentence.
"""

from __future__ import annotations

import json
import os

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "context")
N_TRAIN_WORDS, N_TRAIN_TEMPLATES = 12, 5
POSITIVE, NEAR_MISS = 1.0, 0.25

FEATURES = {
    # Animals as food, against the same animals as animals.
    "food_sense": {
        "words": ["chicken", "lamb", "duck", "turkey", "salmon", "tuna", "rabbit", "goose", "crab", "lobster",
                  "shrimp", "trout", "quail", "octopus", "squid", "cod", "pheasant", "sardine", "mackerel", "eel"],
        "positive": ["We had roast {w} for dinner last night.", "She ordered the grilled {w} with rice and salad.",
                     "The recipe calls for two pounds of {w}.", "He fried the {w} in butter and garlic.",
                     "The restaurant serves smoked {w} on toast.",
                     "Add the chopped {w} to the soup and let it simmer.", "My grandmother makes the best {w} stew.",
                     "They ate cold {w} sandwiches at the picnic.", "Season the {w} with salt before baking it.",
                     "The menu offered fresh {w} with lemon sauce."],
        "other": ["A wild {w} was seen near the river.", "The {w} moved away when the boat came close.",
                  "Scientists tracked the {w} for three months.", "The children watched a {w} at the nature park.",
                  "A young {w} hid among the rocks.",
                  "The {w} escaped from its cage during the night.",
                  "Photographers waited hours to see a {w} in the wild.",
                  "The injured {w} was taken to a rescue center.", "A healthy {w} can live for many years.",
                  "The old {w} rested in the shade."],
    },
    # Cities as sports teams, against the same cities as places. The city never starts the sentence, so it is the
    # same token (with its leading space) in both senses.
    "team_sense": {
        "words": ["Boston", "Chicago", "Denver", "Dallas", "Houston", "Miami", "Phoenix", "Seattle", "Detroit",
                  "Atlanta", "Portland", "Toronto", "Cleveland", "Milwaukee", "Pittsburgh", "Philadelphia",
                  "Baltimore", "Memphis", "Orlando", "Sacramento"],
        "positive": ["Last night {w} beat the visitors three to one.",
                     "Fans cheered as {w} scored in the final minute.",
                     "This week {w} signed a new goalkeeper.",
                     "The coach said {w} played their best game of the season.",
                     "After the trade, {w} moved into first place in the league.",
                     "On Sunday {w} lost at home for the third straight game.",
                     "The referee sent off two players as {w} struggled.",
                     "In the playoffs {w} will face the champions.", "Injuries have left {w} without their top scorer.",
                     "In the end {w} won the title after a long season."],
        "other": ["She moved to {w} in the spring.", "The mayor of {w} opened a new bridge.",
                  "We drove to {w} for the weekend.", "It rained all day in {w}.",
                  "The museum in {w} is free on Sundays.",
                  "He grew up in a small house outside {w}.", "Flights to {w} were delayed by the storm.",
                  "The population of {w} has grown quickly.", "They bought an apartment in downtown {w}.",
                  "The train from {w} arrived on time."],
    },
}


def tokens(sentence: str) -> list[str]:
  """Words with their leading space (the first without), the final period its own token."""
  words = sentence[:-1].split(" ")
  return [w if i == 0 else " " + w for i, w in enumerate(words)] + [sentence[-1]]


def records(name: str, spec: dict) -> list[dict]:
  out = []
  for split, words, templates in (
      ("train", spec["words"][:N_TRAIN_WORDS], lambda t: t[:N_TRAIN_TEMPLATES]),
      ("heldout", spec["words"][N_TRAIN_WORDS:], lambda t: t[N_TRAIN_TEMPLATES:])):
    for w in words:
      for sense, act in (("positive", POSITIVE), ("other", NEAR_MISS)):
        for t in templates(spec[sense]):
          toks = tokens(t.replace("{w}", w))
          target = " " + w
          assert toks.count(target) == 1, (t, w)
          out.append({"tokens": toks, "activations": [act if x == target else 0.0 for x in toks], "feature": name,
                      "split": split, "concept_word": w, "sense": sense})
  return out


def main():
  os.makedirs(OUT, exist_ok=True)
  for name, spec in FEATURES.items():
    rows = records(name, spec)
    with open(os.path.join(OUT, name + ".jsonl"), "w", encoding="utf-8") as f:
      f.writelines(json.dumps(r) + "\n" for r in rows)
    print(f"{name}: {len(rows)} records")


if __name__ == "__main__":
  main()
