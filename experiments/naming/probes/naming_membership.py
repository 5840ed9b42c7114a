"""A look before any plan: does the 1.5B chat model's yes/no on "Is w a kind of c?" pick the name among the ask
rule's label and runners-up? (2026-12-08, on the 26 concept features, tuned on in earlier work; no benchmark split
was read.)

  python -m tokenlabel_jax.label --features=experiments/data/concepts --model=qwen2.5-coder-1.5b \
      --output_dir=runs/concepts_15b                                     # 6 minutes
  python experiments/naming/probes/naming_membership.py --run runs/concepts_15b   # 6 minutes

Why: the ask rule's misses are mostly a member or a word beside the category (furniture ' room', fabric ' clothing'),
and an instruct model answers a verification question more surely than it names. For each concept, the ask rule's 5
best answers (one per word, as the runners-up are chosen) are put to the model with the feature's 8 commonest
positive words: the mean P(yes) over the words (yes against no at the answer's first token, through the chat
template). Writes experiments/results/naming_membership_concepts.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

from experiments import common  # pylint: disable=g-import-not-at-top

N_WORDS, N_ANSWERS = 8, 5


def shortlist(result: dict) -> list[dict]:
  """The ask rule's best answers in its order, one per word, a plural skipped (as `selection.runners_up`)."""
  from tokenlabel_jax import naming  # pylint: disable=import-outside-toplevel
  rows = sorted((v for v in result["verification"] if v.get("ask") is not None), key=lambda v: -v["ask"])
  seen, out = set(), []
  for v in rows:
    forms = naming.inflections(v["label"])
    if naming.normalize(v["label"]) not in seen and not forms & seen:
      seen |= forms
      out.append(v)
  return out[:N_ANSWERS]


def membership(m, words: list[str], answers: list[str]) -> np.ndarray:
  """answers x words: P(yes) against P(no) for "Is w a kind of c? Answer yes or no." as the chat answer's first
  token."""
  from tokenlabel_jax.discriminators import prefix  # pylint: disable=import-outside-toplevel
  tok = m.tokenizer
  yes, no = tok.encode("Yes")[0], tok.encode("No")[0]
  prompts = [tok.encode(tok.chat([{"role": "user", "content": f"Is {w} a kind of {c.strip()}? Answer yes or no."}]))
             for c in answers for w in words]
  lq = np.asarray(prefix.last_logq(m.params, m.cfg, prompts))
  return (1 / (1 + np.exp(lq[:, no] - lq[:, yes]))).reshape(len(answers), len(words))


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--run", default="runs/concepts_15b", help="a label run of the 26 concepts with the ask rule")
  ap.add_argument("--model", default="qwen2.5-coder-1.5b")
  args = ap.parse_args()
  from tokenlabel_jax import naming  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
  m = load_model(args.model)
  rows = []
  for cat in common.categories("concepts"):
    path = os.path.join(args.run, cat["name"], "result.json")
    if not os.path.isfile(path):
      continue
    with open(path, encoding="utf-8") as f:
      result = json.load(f)
    answers = [v["label"] for v in shortlist(result)]
    words = [w for w, _ in result["positive_words"]["top"]][:N_WORDS]
    p_yes = membership(m, words, answers).mean(axis=1)
    top = answers[int(np.argmax(p_yes))]
    named = [a for a in answers if naming.names_category(a, cat["names"])]
    rows.append({"concept": cat["name"], "ask label": answers[0], "ask names": naming.names_category(answers[0],
                                                                                                     cat["names"]),
                 "ask P(yes)": float(p_yes[0]), "most yes": top, "most yes names": bool(named and top in named),
                 "most yes P(yes)": float(p_yes.max()),
                 "name's P(yes)": max((float(p) for a, p in zip(answers, p_yes) if a in named), default=float("nan")),
                 "answers": ", ".join(f"{a!r} {p:.2f}" for a, p in zip(answers, p_yes))})
    print(f"{cat['name']}: {rows[-1]['answers']}", flush=True)
  n_ask, n_yes = sum(r["ask names"] for r in rows), sum(r["most yes names"] for r in rows)
  common.write_table(
      "naming_membership_concepts", rows, ["concept", "ask label", "ask names", "ask P(yes)", "most yes",
                                           "most yes names", "most yes P(yes)", "name's P(yes)", "answers"],
      "Yes/no membership of the ask rule's best answers (26 concepts, a look before any plan)",
      f"The ask rule's label names {n_ask} of {len(rows)}; the answer with the highest mean P(yes) among its best "
      f"{N_ANSWERS} names {n_yes}. P(yes): mean over the feature's {N_WORDS} commonest positive words of P(yes) "
      "against P(no) for \"Is w a kind of c? Answer yes or no.\"",
      summary={"ask names": n_ask, "most yes names": n_yes, "concepts": len(rows)})


if __name__ == "__main__":
  main()
