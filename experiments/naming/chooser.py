"""Can the instruct model, asked in its chat format, pick the category's name out of the namer's best candidates?

  python experiments/naming/naming_benchmark.py --split tune --model qwen2.5-coder-1.5b --scorer '' \
      --tag _qwen2.5-coder-1.5b
  python experiments/naming/chooser.py --model qwen2.5-coder-1.5b --split tune
  # only after the choice below is committed: the same two with --split test (a new --tag for both where the
  # benchmark's own result file for that tag exists: it would resume, and label nothing)

Why: on Qwen2.5-Coder-1.5B-Instruct a name of the category is among the best 10 candidates by validation loss for 80
of 108 tuning categories, but the set namer rule `label` runs (a few-shot "w1, w2, w3 and w4 are kinds of"
continuation) picks it for about half. That rule reads the model as a text completer; asked in its chat format, as
the explainer asks it, the model may know better which word names a set. Unlike the explainer it answers nothing
of its own: it only ranks candidates the discriminator already found, so the label keeps their held-out separation.

Declared before any tuning row was read (this docstring, committed before the run):
- Positive words: up to 12 of the feature's distinct alphabetic positive training tokens
  (`coverage.positive_words`), drawn with seed 0 when there are more.
- Candidates: the naming run's stored rows (result.json "verification": the best 40 by validation loss), single
  tokens only, as the set namer rule compares them; one word in two spellings (case, leading space) counts once,
  with its better row.
- Two prompts per feature, the user turn of the model's chat template; each candidate is scored as the start of the
  assistant's answer, log P(word | prompt), teacher-forced, the better of its lower-case and capitalized forms:
    ask      "These words are all examples of one category: w1, ..., w12.\\nWhat is the name of that category?
             \\nAnswer with one word."
    list     the same with "\\nChoose from: c1, ..., c10." before the last line: the best 10 by validation loss,
             in alphabetical order (no hint of their rank).
- Rules, in this order: `ask@K`, the highest ask score among the best K (K = 5, 10, 20, 32); `ask~m`, among those
  of the best 32 within m of the lowest validation loss (m = 0.05, 0.1, 0.2, 0.3); `list`, the highest list score
  among the 10 listed; `list~m`, among the listed within m.
- The rule naming the most tuning categories wins, ties to the one listed first. It is adopted for the test half
  only if it names at least 6 more tuning categories than the naming run's own labels (the set namer rule), the bar
  the 1.5B model's rule itself had to pass. Only the adopted rule's test figure is reported.
Writes experiments/results/naming_chooser_<split>_<model>.{md,json}; a killed run resumes from that file.

`--calibrate` (declared 2026-12-06 in plan_calibrated_ask.md, before it ran): the ask rule with each label's score as
the answer for 8 other sets of words divided out (`cal0.5~0.2`, `cal1.0~0.2`), on the stored end-scored rows; writes
naming_chooser_<split>_<model>_calibrated.{md,json}. Other splits only if the tuning half passed its bar (it did not).

Declared on 2026-12-05, before any of it was labeled (experiments/naming/plan_fresh.md): the fresh set
(`--split fresh`, categories_fresh.json, 132 categories) is a test of `ask_end~0.2` against the set namer rule on
data no one has looked at. Only the end scores are computed there (`ask_end~0.2` is the one rule measured).

Declared on 2026-12-05 after the test half, before any end score was computed: on the concept features `label
--select_rule=ask` chose ' clo' for clothing, the first piece of the likely answer ' clothing', because an answer is
scored without its end. `ask_end~0.2` is the fixed rule with each answer scored with the token that ends it
(`--end`; coverage.ask_scores(end=True)). It is one rule, not a family: it is measured on the tuning half against
the set namer rule with the same bar (6 more). Should it pass, its test-half figure is a second look at a half this
study has already read, and is reported as that.

After the tuning run and before the test run (2026-12-05) the scoring moved into the library, as `label
--select_rule=ask` runs it (coverage.ask_scores: the same prompts and forms; two-token answers teacher-forced in one
batched pass rather than one model step per first token). `--recheck=108 --split tune` re-scores the stored tuning
rows with it and writes naming_chooser_tune_<model>_recheck.{md,json}: the test run is the tuning run's computation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top

N_WORDS, N_LISTED, TOP = 12, 10, 32
KS = (5, 10, 20, 32)
MARGINS = (0.05, 0.1, 0.2, 0.3)
ADOPTION_BAR = 6
END_MARGIN = 0.2


def candidates(result: dict) -> list[dict]:
  """The stored single-token rows by validation loss, one per word (case and spacing ignored)."""
  from tokenlabel_jax import coverage  # pylint: disable=import-outside-toplevel
  rows = [r for r in result["verification"] if len(r["token_ids"]) == 1]
  return [rows[i] for i in coverage.one_per_word([r["label"] for r in rows], [r["val_loss"] for r in rows])]


def score_category(m, feature, result: dict, end_only: bool = False) -> dict:
  """The ask and list scores of the best TOP candidates (the library's coverage.ask_scores, which `label
  --select_rule=ask` runs; before the test half this study had its own copy, checked equal with --recheck); with
  `end_only`, the end-scored ask scores alone (the fresh set's one rule)."""
  from tokenlabel_jax import coverage  # pylint: disable=import-outside-toplevel
  words = coverage.ask_words(feature, n=N_WORDS)
  cands = candidates(result)[:TOP]
  texts = [c["label"] for c in cands]
  listed = texts[:N_LISTED]
  nothing = np.full(len(texts), np.nan)  # nothing to ask about: every rule falls back to the best by validation loss
  if end_only:
    got = {"ask_end": coverage.ask_scores(m, words, texts, end=True) if words else nothing}
  else:
    got = {"ask": coverage.ask_scores(m, words, texts) if words else nothing,
           "list": (coverage.ask_scores(m, words, listed, listed=[t.strip() for t in listed]) if words
                    else nothing[:len(listed)])}
  return {"words": words, "candidates": [
      {"label": c["label"], "val_loss": c["val_loss"], "heldout_auc": c.get("auc"),
       **{k: float(v[i]) for k, v in got.items() if i < len(v)}} for i, c in enumerate(cands)]}


def rescoring_run(study: str, doc: str, gate: str, plan: str, model_in_name: bool = True):
  """What a study that re-scores the stored chooser rows starts with: its arguments (--model, --split), its result
  name (<study>_<split>_<model>; without the model for a study whose plan named its file so) and settings, the
  stored rows of the split and the rows a killed run already wrote. A split other than tune is refused unless the
  tuning half's result has `gate` set (the plan's bar passed)."""
  ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--model", default="qwen2.5-coder-1.5b")
  ap.add_argument("--split", default="tune", help="tune | test | fresh")
  args = ap.parse_args()
  from absl import logging  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.WARNING)
  def name_of(split):
    return f"{study}_{split}_{args.model}" if model_in_name else f"{study}_{split}"
  name, settings = name_of(args.split), {"split": args.split, "model": args.model}
  if args.split != "tune" and not common.earlier_run(name_of("tune"), dict(settings, split="tune"))[1].get(gate):
    sys.exit(f"the tuning half has not passed the bar of {plan}: no other split is scored")
  with open(os.path.join(common.RESULTS, f"naming_chooser_{args.split}_{args.model}.json"), encoding="utf-8") as f:
    stored = json.load(f)["summary"]["rows"]
  return args, name, settings, stored, common.earlier_run(name, settings)[1].get("rows", [])


def rescore(stored: list[dict], rows: list[dict], score, line, write) -> None:
  """Scores each stored row a killed run has not (`score(row)` -> the new row), printing `line(new row)` with the
  progress and writing the result after each."""
  done = {r["category"] for r in rows}
  t0 = time.time()
  for row in stored:
    if row["category"] in done:
      continue
    rows.append(score(row))
    print(f"{len(rows)}/{len(stored)} {row['category']}: {line(rows[-1])} ({time.time() - t0:.0f}s)", flush=True)
    write(rows)
  write(rows)


def best(cands, key, keep):
  """The candidate with the highest `key` score among those `keep` marks; the first where none has one."""
  pool = [c for i, c in enumerate(cands) if keep(i, c) and np.isfinite(c.get(key, np.nan))]
  return max(pool, key=lambda c: c[key]) if pool else cands[0]


def in_window(cands, x) -> bool:
  """Whether candidate x is within END_MARGIN of the lowest validation loss (the ask rule's window)."""
  return x["val_loss"] <= cands[0]["val_loss"] + END_MARGIN


def end_rule(cands):
  """ask_end~0.2: the fixed rule, each answer scored with its end (declared after the test half)."""
  return best(cands, "ask_end", lambda i, x: in_window(cands, x))


def rules():
  """(name, function of the scored candidates -> the chosen one), in the declared order."""
  out = [(f"ask@{k}", lambda c, k=k: best(c, "ask", lambda i, _: i < k)) for k in KS]
  out += [(f"ask~{mg}", lambda c, mg=mg: best(c, "ask", lambda i, x: x["val_loss"] <= c[0]["val_loss"] + mg))
          for mg in MARGINS]
  out.append(("list", lambda c: best(c, "list", lambda i, _: i < N_LISTED)))
  out += [(f"list~{mg}", lambda c, mg=mg: best(c, "list", lambda i, x: i < N_LISTED
                                                     and x["val_loss"] <= c[0]["val_loss"] + mg)) for mg in MARGINS]
  return out


def table(rows: list[dict]) -> tuple[list[dict], dict]:
  """Per rule: categories named, the median held-out AUC (namer) of its labels; and the winner."""
  from tokenlabel_jax import naming  # pylint: disable=import-outside-toplevel
  out = [{"rule": "set namer (the naming run's label)", "names": sum(r["shipped names"] for r in rows),
          "median held-out AUC": float(np.nanmedian([r["shipped AUC"] for r in rows]))}]
  asked = all("ask" in c for r in rows for c in r["candidates"][:1])  # the fresh set has the end scores only
  for name, rule in rules() if asked else ():
    chosen = [rule(r["candidates"]) for r in rows]
    for r, c in zip(rows, chosen):
      r[name] = c["label"]
    out.append({"rule": name, "names": sum(naming.names_category(c["label"], r["names"]) for r, c in zip(rows, chosen)),
                "median held-out AUC": float(np.nanmedian([np.nan if c["heldout_auc"] is None else c["heldout_auc"]
                                                           for c in chosen]))})
  out.append({"rule": "a name among the best 10 (ceiling of list)", "names": sum(
      any(naming.names_category(c["label"], r["names"]) for c in r["candidates"][:N_LISTED]) for r in rows)})
  out.append({"rule": "a name among the best 32 (ceiling of ask)", "names": sum(
      any(naming.names_category(c["label"], r["names"]) for c in r["candidates"]) for r in rows)})
  if rows and all("ask_end" in c for r in rows for c in r["candidates"]):
    chosen = [end_rule(r["candidates"]) for r in rows]
    for r, c in zip(rows, chosen):
      r["ask_end~0.2"] = c["label"]
    out.append({"rule": "ask_end~0.2 (declared after the test half)",
                "names": sum(naming.names_category(c["label"], r["names"]) for r, c in zip(rows, chosen)),
                "median held-out AUC": float(np.nanmedian([np.nan if c["heldout_auc"] is None else c["heldout_auc"]
                                                           for c in chosen]))})
  if rows and any("ask_end~0.2" in r for r in rows):
    lab = "ask_end~0.2"
    gained = sum(naming.names_category(r[lab], r["names"]) and not r["shipped names"] for r in rows)
    lost = sum(r["shipped names"] and not naming.names_category(r[lab], r["names"]) for r in rows)
    out[-1].update({"gained": gained, "lost": lost, "sign test p": common.sign_test(gained, lost)})
  ranked = out[1:1 + len(rules())] if asked else out[:1]
  winner = max(ranked, key=lambda t: (t["names"], -ranked.index(t)))
  return out, {"winner": winner["rule"], "winner_names": winner["names"], "set_namer_names": out[0]["names"],
               "adopted": winner["names"] >= out[0]["names"] + ADOPTION_BAR}


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--model", default="qwen2.5-coder-1.5b")
  ap.add_argument("--split", default="tune", help="tune | test | fresh")
  ap.add_argument("--runs", default=os.path.join(common.HERE, "runs", "naming"),
                  help="where naming_benchmark.py wrote its run (<runs>/<split><tag>/<category>/result.json)")
  ap.add_argument("--tag", default="", help="naming_benchmark.py's --tag (default: _<model>)")
  ap.add_argument("--data", default=os.path.join(common.DATA, "benchmark"))
  ap.add_argument("--end", action="store_true", help="instead: score each stored row's candidates with the answer's "
                  "end too (the ask_end~0.2 rule) and add them to the result file")
  ap.add_argument("--calibrate", action="store_true", help="instead: the calibrated ask rules of "
                  "plan_calibrated_ask.md on this split's stored candidates (no naming run needed)")
  ap.add_argument("--recheck", type=int, default=0, help="instead: re-score the first N stored rows of this split "
                  "with the library's coverage.ask_scores and write how far its scores and choices are from them")
  args = ap.parse_args()
  from absl import logging  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import data as data_lib, naming  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.WARNING)
  if args.calibrate:
    return calibrate(args.model, args.split)
  cats = common.categories(args.split, args.data)
  tag = args.tag or f"_{args.model}"
  run_dir = os.path.join(args.runs, args.split + tag)
  missing = [c["name"] for c in cats if not os.path.exists(os.path.join(run_dir, c["name"], "result.json"))]
  if missing:
    sys.exit(f"{len(missing)} of {len(cats)} categories have no naming run in {run_dir} (first: {missing[0]}): run "
             f"`python experiments/naming/naming_benchmark.py --split {args.split} --model {args.model} --scorer '' "
             f"--tag {tag}` first.")
  name = f"naming_chooser_{args.split}_{args.model}"
  settings = {"split": args.split, "model": args.model}
  rows = [r for r in common.earlier_run(name, settings)[1].get("rows", []) if "candidates" in r]
  done = {r["category"] for r in rows}
  m = load_model(args.model)
  if args.recheck:
    return recheck(m, name, settings, rows[:args.recheck], {c["name"]: c["path"] for c in cats})
  if args.end:
    return add_end_scores(m, name, settings, rows, len(cats))
  t0 = time.time()
  for c in cats:
    if c["name"] in done:
      continue
    with open(os.path.join(run_dir, c["name"], "result.json"), encoding="utf-8") as f:
      result = json.load(f)
    feature = data_lib.load_features(c["path"])[0]
    rows.append({"category": c["name"], "names": c["names"], "shipped": result["best_candidate"],
                 "shipped names": naming.names_category(result["best_candidate"], c["names"]),
                 "shipped AUC": result["heldout"]["auc"],
                 **score_category(m, feature, result, end_only=args.split == "fresh")})
    print(f"{len(rows)}/{len(cats)} {c['name']} ({time.time() - t0:.0f}s)", flush=True)
    write(name, settings, rows, len(cats))
  write(name, settings, rows, len(cats))


CAL_ALPHAS, CAL_REFS, CAL_CHUNK = (0.5, 1.0), 8, 128
CAL_BAR = 63  # 6 more than ask_end~0.2's 57 of 108 on the tuning half (plan_calibrated_ask.md)


def calibrated_rule(cands, alpha):
  """cal{alpha}~0.2: among the ask rule's window, the highest ask_end - alpha * the label's reference score."""
  pool = [x for x in cands if in_window(cands, x)
          and np.isfinite(x.get("ask_end", np.nan)) and np.isfinite(x.get("ref", np.nan))]
  return max(pool, key=lambda x: x["ask_end"] - alpha * x["ref"]) if pool else cands[0]


def calibrate(model: str, split: str) -> None:
  """The plan's calibrated ask rules: each candidate of the ask rule's window scored, with the same end-scored
  question, as the answer for 8 fixed reference sets of words (the first 8 tuning categories by the SHA-256 of their
  name, leaving a category's own set out of its mean). Per reference the scores of every label of the split are kept
  in the result file, so a killed run resumes at the next reference."""
  import hashlib  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import coverage  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
  tune = common.earlier_run(f"naming_chooser_tune_{model}", {"split": "tune", "model": model})[1].get("rows", [])
  rows = common.earlier_run(f"naming_chooser_{split}_{model}", {"split": split, "model": model})[1].get("rows", [])
  if not tune or not rows or not all("ask_end" in c for r in rows for c in r["candidates"]):
    sys.exit(f"no end-scored chooser rows for {model} on the tuning half and the {split} split: run "
             f"`python experiments/naming/chooser.py --model {model} --split {split}` (and `--end`) first.")
  name, settings = f"naming_chooser_{split}_{model}_calibrated", {"split": split, "model": model}
  if split != "tune":
    fixed = tuned_calibration(model)
    if not fixed.get("adopted"):
      sys.exit("the tuning half's calibrated rule did not pass its bar (or was not run): by the plan, no other split "
               "is scored.")
  refs = sorted((r for r in tune if r["words"]), key=lambda r: hashlib.sha256(r["category"].encode()).hexdigest())
  refs = [(r["category"], r["words"]) for r in refs[:CAL_REFS]]
  labels = sorted({c["label"].strip().lower() for r in rows for c in r["candidates"] if in_window(r["candidates"], c)})
  done = common.earlier_run(name, settings)[1].get("reference_scores", {})
  m = None
  t0 = time.time()
  for cat, words in refs:
    if cat in done:
      continue
    m = m or load_model(model)
    got = np.concatenate([coverage.ask_scores(m, words, labels[i:i + CAL_CHUNK], end=True)
                          for i in range(0, len(labels), CAL_CHUNK)])
    done[cat] = dict(zip(labels, map(float, got)))
    print(f"reference {len(done)}/{len(refs)} ({cat}): {len(labels)} labels ({time.time() - t0:.0f}s)", flush=True)
    write_calibrated(name, settings, rows, refs, done, final=False)
  write_calibrated(name, settings, rows, refs, done, final=True)


def tuned_calibration(model: str) -> dict:
  """The tuning half's calibrated result (its winner, and whether it passed the bar); {} where it was not run."""
  return common.earlier_run(f"naming_chooser_tune_{model}_calibrated", {"split": "tune", "model": model})[1]


def write_calibrated(name, settings, rows, refs, done, final):
  """Per category the three rules' labels; per rule the count named, gained and lost against ask_end~0.2."""
  from tokenlabel_jax import naming  # pylint: disable=import-outside-toplevel
  out = []
  for r in rows:
    own = [cat for cat, _ in refs if cat != r["category"] and cat in done]
    cands = [dict(c, ref=float(np.mean([done[cat][c["label"].strip().lower()] for cat in own])) if own
                  and all(c["label"].strip().lower() in done[cat] for cat in own) else np.nan) for c in r["candidates"]]
    row = {"category": r["category"], "names": r["names"], "ask_end~0.2": end_rule(cands)["label"]}
    for a in CAL_ALPHAS:
      row[f"cal{a}~0.2"] = calibrated_rule(cands, a)["label"]
    row["auc"] = {k: next(c["heldout_auc"] for c in cands if c["label"] == row[k]) for k in row if "~" in k}
    out.append(row)
  table = []
  for k in ["ask_end~0.2"] + [f"cal{a}~0.2" for a in CAL_ALPHAS]:
    hit = [naming.names_category(o[k], o["names"]) for o in out]
    base = [naming.names_category(o["ask_end~0.2"], o["names"]) for o in out]
    gained, lost = sum(h and not b for h, b in zip(hit, base)), sum(b and not h for h, b in zip(hit, base))
    table.append({"rule": k, "names": sum(hit), "gained": gained, "lost": lost,
                  "sign test p": common.sign_test(gained, lost),
                  "median held-out AUC": float(np.nanmedian([np.nan if o["auc"][k] is None else o["auc"][k]
                                                             for o in out]))})
  cal = table[1:]
  if settings["split"] == "tune":
    win = max(cal, key=lambda t: (t["names"], -cal.index(t)))
    choice = {"winner": win["rule"], "winner_names": win["names"], "adopted": win["names"] >= CAL_BAR}
    notes = (f"Declared before the run (plan_calibrated_ask.md): the winner `{win['rule']}` names {win['names']} of "
             f"{len(out)}; it goes on to the test half and the fresh set only with at least {CAL_BAR}: "
             f"{'yes' if choice['adopted'] else 'no'}.")
  else:
    fixed = tuned_calibration(settings["model"])
    choice = {"fixed on tune": fixed.get("winner")}
    notes = f"Fixed on the tuning half: `{fixed.get('winner')}`; only its row is this split's figure."
  if not final:
    notes = f"Partial: {len(done)} of {len(refs)} references. " + notes
  common.write_table(name, table, ["rule", "names", "gained", "lost", "sign test p", "median held-out AUC"],
                     f"The ask rule calibrated against other sets of words ({settings['split']}, {settings['model']})",
                     notes, summary=dict(settings, **choice, references=[c for c, _ in refs],
                                         reference_scores=done, categories=out))


def add_end_scores(m, name: str, settings: dict, rows: list[dict], total: int) -> None:
  """Each stored row's candidates scored as whole answers, their end included (coverage.ask_scores(end=True));
  rows that have them are kept (a killed run resumes)."""
  from tokenlabel_jax import coverage  # pylint: disable=import-outside-toplevel
  print(f"an answer ends with {m.tokenizer.token_str(coverage.answer_end(m.tokenizer))!r}", flush=True)
  t0 = time.time()
  for n, r in enumerate(rows, 1):
    if all("ask_end" in c for c in r["candidates"]):
      continue
    got = (coverage.ask_scores(m, r["words"], [c["label"] for c in r["candidates"]], end=True) if r["words"]
           else np.full(len(r["candidates"]), np.nan))
    for c, v in zip(r["candidates"], got):
      c["ask_end"] = float(v)
    print(f"{n}/{len(rows)} {r['category']} ({time.time() - t0:.0f}s)", flush=True)
    write(name, settings, rows, total, end=True)
  write(name, settings, rows, total, end=True)


def recheck(m, name: str, settings: dict, rows: list[dict], paths: dict[str, str]) -> None:
  """The stored scores against the library's (`label --select_rule=ask` runs coverage.ask_scores): the largest
  difference per category, whether its positive words are the same, and whether each rule's choice is."""
  from tokenlabel_jax import coverage, data as data_lib  # pylint: disable=import-outside-toplevel
  out = []
  for r in rows:
    texts = [c["label"] for c in r["candidates"]]
    listed = texts[:N_LISTED]
    words = coverage.ask_words(data_lib.load_features(paths[r["category"]])[0], n=N_WORDS)
    again = [dict(c) for c in r["candidates"]]
    if r["words"]:
      for c, v in zip(again, coverage.ask_scores(m, r["words"], texts)):
        c["ask"] = float(v)
      for c, v in zip(again, coverage.ask_scores(m, r["words"], listed, listed=[t.strip() for t in listed])):
        c["list"] = float(v)
    diff = [abs(a[k] - c[k]) for a, c in zip(again, r["candidates"]) for k in ("ask", "list") if k in c]
    out.append({"category": r["category"], "same words": words == r["words"],
                "max |score difference|": float(np.nanmax(diff)) if r["words"] else 0.0,
                "choices changed": sum(rule(again)["label"] != rule(r["candidates"])["label"] for _, rule in rules())})
    print(f"{len(out)}/{len(rows)} {out[-1]}", flush=True)
  summary = {"rows": len(out), "same words": sum(o["same words"] for o in out),
             "max |score difference|": max(o["max |score difference|"] for o in out),
             "choices changed": sum(o["choices changed"] for o in out)}
  common.write_table(name + "_recheck", out, list(out[0]), f"The stored chooser scores re-scored by the library "
                     f"({settings['split']} half, {settings['model']})",
                     f"{summary['rows']} categories x {len(rules())} rules: {summary['choices changed']} choices "
                     f"changed; largest score difference {summary['max |score difference|']:.2e}; the same positive "
                     f"words for {summary['same words']}.", summary=dict(settings, **summary))


def write(name: str, settings: dict, rows: list[dict], total: int, end: bool = False) -> None:
  got, choice = table(rows)
  notes = f"Partial: {len(rows)} of {total}. " if len(rows) < total else ""
  if settings["split"] == "tune":
    notes += (f"The winner: `{choice['winner']}`, {choice['winner_names']} named against the set namer rule's "
              f"{choice['set_namer_names']}; adopted for the test half (at least {ADOPTION_BAR} more): "
              f"{'yes' if choice['adopted'] else 'no'}.")
  elif settings["split"] == "fresh":  # one declared comparison, no choice
    ended = next((t for t in got if t["rule"].startswith("ask_end")), None)
    if ended:
      notes += (f"Declared before the run (plan_fresh.md): `ask_end~0.2` names {ended['names']} against the set namer "
                f"rule's {got[0]['names']} ({ended['gained']} gained, {ended['lost']} lost, sign test p = "
                f"{ended['sign test p']:.2g}); it becomes the 1.5B model's default only with at least {ADOPTION_BAR} "
                f"more: {'yes' if ended['names'] >= got[0]['names'] + ADOPTION_BAR else 'no'}.")
    choice = {}
  else:  # no winner is picked here: the rule fixed on the tuning half, read back from its result file
    tuned = common.earlier_run(f"naming_chooser_tune_{settings['model']}", dict(settings, split="tune"))[1]
    for t in got:
      t["fixed on tune"] = "yes" if tuned.get("adopted") and t["rule"] == tuned.get("winner") else ""
    notes += (f"Fixed on the tuning half: `{tuned.get('winner')}` (adopted: {tuned.get('adopted')}); only its row is "
              "the test figure." if tuned else "No tuning-half result found: no rule is fixed.")
    choice = {}
  command = None
  if end:  # the rows come from the plain run, the end scores from this one: both commands reproduce the file
    plain = [a for a in sys.argv[1:] if a != "--end"]
    command = " ".join(["python experiments/naming/chooser.py", *plain, "&& the same with --end"])
  common.write_table(name, got, ["rule", "names", "median held-out AUC", "fixed on tune", "gained", "lost",
                                 "sign test p"],
                     f"Choosing the name with the chat model ({settings['split']} "
                     f"{'set' if settings['split'] == 'fresh' else 'half'}, {settings['model']})", notes,
                     command=command, summary=dict(settings, **choice, rows=rows))


if __name__ == "__main__":
  main()
