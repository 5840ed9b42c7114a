"""Shared by the experiment scripts: run labeling configurations and write a table (markdown + JSON)."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
import time
from typing import Any, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
RESULTS = os.path.join(HERE, "results")

# The paper's four synthetic features (experiments/data/<name>.jsonl): the labels scored beside ours as references,
# and the names that count as naming each (for the naming judge, tokenlabel_jax.naming).
PAPER_FEATURES = ["animal", "mammal", "chinese", "number"]
PAPER_REFERENCES = {"animal": ["animal", "creature"], "mammal": ["mammal", "animal"], "chinese": ["Chinese", "中文"],
                    "number": ["number", "numeral"]}
PAPER = {"animal": ["animal", "creature"], "mammal": ["mammal"], "chinese": ["chinese", "中文"],
         "number": ["number", "numeral"]}


def setup(name: str, description: str | None = None, launcher_steps: bool = False, steps: int | None = None,
          **extra_args):
  """Parses the flags every experiment shares (plus `extra_args`: flag -> argparse kwargs), quiets orbax, loads
  the model. Returns (args, loaded model, its default discriminator). `launcher_steps`: without --steps, the
  launcher's default (no gradient run where the exact scan suffices, `labeling.scan_suffices`), not 300; `steps`:
  the study's own default instead."""
  import argparse  # pylint: disable=import-outside-toplevel
  from absl import logging  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import discriminators as disc_lib  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.loading import load_model  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=import-outside-toplevel
  ap = argparse.ArgumentParser(description=description)
  ap.add_argument("--model", default="smollm2-135m-instruct",
                  help="a model as --model takes it (default: the 135M model, which these studies measured)")
  ap.add_argument("--discriminator", default=None, help="default: the model's measured default")
  ap.add_argument("--steps", type=int, default=steps or (None if launcher_steps else LabelConfig().steps))
  ap.add_argument("--out", default=os.path.join(HERE, "runs", name), help="runs and checkpoints")
  for flag, kwargs in extra_args.items():
    ap.add_argument(flag, **kwargs)
  args = ap.parse_args()
  logging.set_verbosity(logging.WARNING)
  m = load_model(args.model)
  disc = disc_lib.get(args.discriminator or disc_lib.default_for(m.tokenizer, m.cfg))
  from tokenlabel_jax import labeling  # pylint: disable=import-outside-toplevel
  args.steps = labeling.default_steps(disc, LabelConfig(), args.steps)
  return args, m, disc


def sign_test(better: int, worse: int) -> float:
  """Two-sided exact sign test: the chance of a split at least this uneven if either side were as likely to win."""
  import math  # pylint: disable=import-outside-toplevel
  n, k = better + worse, min(better, worse)
  return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0


def fisher_greater(named_a: int, missed_a: int, named_b: int, missed_b: int) -> float:
  """One-sided Fisher exact test: the chance, with the margins fixed, that group a holds at least `named_a` of the
  named ones if naming did not depend on the group (a higher rate in a than in b)."""
  import math  # pylint: disable=import-outside-toplevel
  n_a, named, n = named_a + missed_a, named_a + named_b, named_a + missed_a + named_b + missed_b
  return sum(math.comb(named, k) * math.comb(n - named, n_a - k)
             for k in range(named_a, min(n_a, named) + 1)) / math.comb(n, n_a)


def feature(name: str):
  from tokenlabel_jax import data as data_lib  # pylint: disable=import-outside-toplevel
  path = os.path.join(DATA, name + ".jsonl")
  return data_lib.load_features(path)[0]


def write_table(name: str, rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str, notes: str = "",
                command: str | None = None, summary: dict[str, Any] | None = None) -> str:
  """Writes experiments/results/<name>.json and <name>.md; returns the markdown."""
  os.makedirs(RESULTS, exist_ok=True)
  command = command or "python " + shlex.join([os.path.relpath(sys.argv[0], os.path.dirname(HERE))] + sys.argv[1:])
  with open(os.path.join(RESULTS, name + ".json"), "w") as f:
    json.dump({"title": title, "command": command, "date": time.strftime("%Y-%m-%d"), "summary": summary,
               "rows": list(rows)}, f, indent=1, ensure_ascii=False)
  def fmt(v):
    if isinstance(v, float):  # a small p-value is not zero: keep its size
      return f"{v:.1e}" if 0 < abs(v) < 5e-4 else f"{v:.3f}"
    if isinstance(v, str) and v != v.strip():
      return repr(v)
    return str(v)
  lines = [f"# {title}", "", f"Made by `{command}` on {time.strftime('%Y-%m-%d')} (2-core CPU, float32).", ""]
  if notes:
    lines += [notes, ""]
  lines.append("| " + " | ".join(columns) + " |")
  lines.append("|" + "---|" * len(columns))
  for r in rows:
    lines.append("| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |")
  md = "\n".join(lines) + "\n"
  with open(os.path.join(RESULTS, name + ".md"), "w") as f:
    f.write(md)
  print(md, flush=True)
  return md


def earlier_run(name: str, settings: dict[str, Any]) -> tuple[list[dict], dict]:
  """The rows and summary of experiments/results/<name>.json when its summary has these settings, else ([], {}):
  a cut run of hours resumes where it stopped instead of starting over."""
  try:
    with open(os.path.join(RESULTS, name + ".json"), encoding="utf-8") as f:
      old = json.load(f)
  except (OSError, ValueError):
    return [], {}
  summary = old.get("summary") or {}
  if any(summary.get(k) != v for k, v in settings.items()):
    return [], {}
  return list(old.get("rows", [])), summary


def scorer_aucs(scorer_m, feature, lcfg, texts) -> dict[str, float]:
  """Held-out AUC of each non-blank label in `texts` under the likelihood discriminator of another model (a judge no
  method was optimized against), on the held-out examples `lcfg` splits off. A label missing from the answer had
  nothing to score: callers count it at chance (0.5), as every study does for a method without a label."""
  from tokenlabel_jax import discriminators as disc_lib, labeling  # pylint: disable=import-outside-toplevel
  uniq = sorted({t for t in texts if t and t.strip()})
  if not uniq:
    return {}
  ids = [disc_lib.encode_label(scorer_m.tokenizer, t) for t in uniq]
  got = labeling.independent_scores(scorer_m, feature, disc_lib.get("likelihood"), lcfg, ids, uniq)
  return {t: float(got[t]["auc"]) for t in uniq}


def label_rows(m, features, disc, lcfg, out_dir, references_by_feature, setting: str) -> list[dict[str, Any]]:
  """Labels the features together and returns one table row per feature."""
  from tokenlabel_jax import labeling  # pylint: disable=import-outside-toplevel
  refs = sorted({r for f in features for r in references_by_feature.get(f.name, [])})
  results = labeling.label_features(m, features, disc, lcfg, out_dir, refs, resume=True)
  rows = []
  for r in results:
    row = {"feature": r["feature"], "setting": setting, "label": r["label"], "p": r["probability"],
           "heldout AUC": r["heldout"]["auc"], "F1": r["heldout"]["f1"], "steps": r["steps"],
           "wall s/feature": r["wall_time_s"], "seed argmax": " ".join(repr(s) for s in r["seed_argmax"])}
    for ref in references_by_feature.get(r["feature"], []):
      row[f"ref {ref!r} AUC"] = r["references"][ref]["auc"]
    row["reference"] = ", ".join(f"{ref} {r['references'][ref]['auc']:.3f}"
                                 for ref in references_by_feature.get(r["feature"], []))
    rows.append(row)
  return rows


def categories(split: str, data: str | None = None) -> list[dict]:
  """The naming benchmark's tune or test half (each category with its names and records path under `data`, by
  default the set's own folder: experiments/data/benchmark, or experiments/data/<split> for the norms sets), "fresh"
  (categories_fresh.json: declared after the benchmark's tuning, one test set), or "concepts": the 26 concept features
  and the paper's four (tuned on in earlier work: never a test figure), or "norms" (categories_norms.json: everyday
  categories declared by hand before any was labeled, records in experiments/data/norms), or "norms2" (the second
  such set, plan_norms2.md)."""
  if split in ("norms", "norms2"):
    spec = json.load(open(os.path.join(HERE, "naming", f"categories_{split}.json")))["categories"]
    return [dict(c, path=os.path.join(data or os.path.join(DATA, split), c["name"] + ".jsonl")) for c in spec]
  if split in ("tune", "test", "fresh"):
    spec = json.load(open(os.path.join(HERE, "naming", "categories_fresh.json" if split == "fresh"
                                       else "categories.json")))["categories"]
    return [dict(c, path=os.path.join(data or os.path.join(DATA, "benchmark"), c["name"] + ".jsonl")) for c in spec
            if c["split"] == split]
  if split == "concepts":
    spec = json.load(open(os.path.join(HERE, "concepts.json")))["concepts"]
    out = [{"name": c["name"], "names": [c["concept_word"], c["name"].replace("_", " "), *c["synonyms"]],
            "path": os.path.join(DATA, "concepts", c["name"] + ".jsonl")} for c in spec]
    return out + [{"name": k, "names": v, "path": os.path.join(DATA, k + ".jsonl")} for k, v in PAPER.items()]
  raise ValueError(f"unknown split {split!r}: tune, test, fresh, norms, norms2 or concepts")


def by_name_hash(cats: list[dict]) -> list[dict]:
  """Categories in the order of the sha256 of their names: a sample declared before a run takes the first N, so it
  is fixed by the names alone, not by anyone's choice."""
  return sorted(cats, key=lambda c: hashlib.sha256(c["name"].encode()).hexdigest())
