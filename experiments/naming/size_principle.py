"""The ask rule's best answers re-ranked by log P(the positive words | "List twelve kinds of c"): declared in
plan_size_principle.md before any score was computed.

  python experiments/naming/size_principle.py --split tune   # then, only if it passes the plan's bar: test, fresh

Reads the chooser's stored rows (experiments/results/naming_chooser_<split>_<model>.json: words, candidates, their
validation losses and end-scored ask scores); labels nothing again. Writes
experiments/results/naming_size_principle_<split>.{md,json}; a killed run resumes from that file.
"""

from __future__ import annotations

import functools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from experiments.naming import chooser  # pylint: disable=g-import-not-at-top

TOP, BAR, MODEL = 5, 63, "qwen2.5-coder-1.5b"


def shortlist(cands: list[dict]) -> list[dict]:
  """The TOP candidates with the highest end-scored ask score within the ask rule's window."""
  pool = [c for c in cands if chooser.in_window(cands, c) and np.isfinite(c.get("ask_end", np.nan))]
  return sorted(pool, key=lambda c: -c["ask_end"])[:TOP]


def question(n: int, label: str) -> str:
  return f"List {n} kinds of {label.strip()}." if n != 12 else f"List twelve kinds of {label.strip()}."


def kinds_scores(m, words: list[str], labels: list[str]) -> list[float]:
  """Per label, log P(", ".join(words) + end | the chat question about the label's kinds), teacher-forced."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import coverage, model  # pylint: disable=import-outside-toplevel
  tok = m.tokenizer
  answer = tok.encode(", ".join(words)) + [coverage.answer_end(tok)]
  seqs = [tok.encode(tok.chat([{"role": "user", "content": question(len(words), lab)}])) + answer for lab in labels]
  width = -(-max(len(s) for s in seqs) // 16) * 16  # a few shapes, a few compilations
  ids = np.zeros((len(seqs), width), np.int32)
  valid = np.zeros((len(seqs), width), bool)
  for i, s in enumerate(seqs):
    ids[i, :len(s)], valid[i, :len(s)] = s, True
  logits_BxSxV, _ = _forward(model)(m.params, m.cfg, jnp.asarray(ids), jnp.asarray(valid))
  logp = np.asarray(jax.nn.log_softmax(logits_BxSxV[:, :-1], axis=-1))
  out = []
  for i, s in enumerate(seqs):
    start = len(s) - len(answer)  # the answer's first token is predicted at position start - 1
    out.append(float(sum(logp[i, t - 1, s[t]] for t in range(start, len(s)))))
  return out


@functools.cache
def _forward(model):
  """model.forward_tokens compiled once per shape for the whole run."""
  import jax  # pylint: disable=import-outside-toplevel
  return jax.jit(model.forward_tokens, static_argnums=1)


def strict_names(cat: dict) -> list[str]:
  from experiments.naming import strict_judge  # pylint: disable=import-outside-toplevel
  drop = set(strict_judge.vertical_synonyms(cat["synset"], cat["names"]))
  return [n for n in cat["names"] if n not in drop]


def write(split: str, rows: list[dict], total: int, command: str | None = None) -> dict:
  """The two rules' counts under the judge and the floor, as a result table (common.write_table); the per-category
  rows in its summary, from which a killed run resumes."""
  from tokenlabel_jax import naming  # pylint: disable=import-outside-toplevel
  def names(key, judge):
    return [naming.names_category(r[key], r[judge]) for r in rows]
  table = []
  for key in ("ask_end~0.2", "size@5"):
    row = {"rule": key, "names (judge)": sum(names(key, "names")),
           "names (floor: no synonym above or below)": sum(names(key, "strict names"))}
    if key == "size@5":
      for judge, col in (("names", "judge"), ("strict names", "floor")):
        pairs = list(zip(names(key, judge), names("ask_end~0.2", judge)))
        g, lo = sum(a and not b for a, b in pairs), sum(b and not a for a, b in pairs)
        row |= {f"gained, {col}": g, f"lost, {col}": lo, f"sign test p, {col}": common.sign_test(g, lo)}
    table.append(row)
  moved = [r for r in rows if r["size@5"] != r["ask_end~0.2"]]
  passes = len(rows) == total and table[1]["names (judge)"] >= BAR
  notes = [f"Declared in `experiments/naming/plan_size_principle.md` before any score was computed. Stored candidates "
           f"of `naming_chooser_{split}_{MODEL}.json`; the chosen label as stored, no chance check. Categories: "
           f"{len(rows)} of {total}; labels moved: {len(moved)}. Bar for the other splits: {BAR}"
           + (f" ({'passed' if passes else 'not passed'})." if len(rows) == total else "."), "",
           "| category | names | ask_end~0.2 | size@5 | shortlist (kinds score) |", "|---|---|---|---|---|"]
  notes += [f"| {r['category']} | {', '.join(r['names'][:3])} | {r['ask_end~0.2'].strip()} | {r['size@5'].strip()} | "
            + ", ".join(f"{c['label'].strip()} {c['kinds']:.1f}" for c in r["shortlist"] if "kinds" in c) + " |"
            for r in moved]
  summary = {"split": split, "model": MODEL, "passes bar": passes, "rows": rows}
  common.write_table(f"naming_size_principle_{split}", table, list(table[1]),
                     f"The ask rule's best {TOP} answers re-ranked by log P(words | 'List twelve kinds of c'), {split}",
                     "\n".join(notes), command=command, summary=summary)
  return {k: v for k, v in summary.items() if k != "rows"} | {"table": table}


def main():
  from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
  args, _, _, stored, rows = chooser.rescoring_run("naming_size_principle", __doc__, "passes bar",
                                                   "plan_size_principle.md", model_in_name=False)
  cats = {c["name"]: c for c in common.categories(args.split)}
  m = load_model(MODEL)

  def score(s: dict) -> dict:
    cands = s["candidates"]
    short = shortlist(cands)
    if s["words"] and short:
      for c, k in zip(short, kinds_scores(m, s["words"], [c["label"] for c in short])):
        c["kinds"] = k
    chosen = max(short, key=lambda c: c.get("kinds", -np.inf)) if short else cands[0]
    return {"category": s["category"], "names": s["names"], "strict names": strict_names(cats[s["category"]]),
            "ask_end~0.2": chooser.end_rule(cands)["label"], "size@5": chosen["label"],
            "shortlist": [{k: c[k] for k in ("label", "val_loss", "ask_end", "kinds") if k in c} for c in short]}
  chooser.rescore(stored, rows, score, lambda r: f"{r['ask_end~0.2']!r} -> {r['size@5']!r}",
                  lambda rows: write(args.split, rows, len(stored)))


if __name__ == "__main__":
  main()
