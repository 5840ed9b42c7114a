"""The files of a run directory that every launcher writes alike (label, explain): one summary entry per feature."""

from __future__ import annotations

import json
import os


def summary_entry(r: dict) -> dict:
  """What summary.json keeps of a feature's result.json."""
  return {k: r[k] for k in ("label", "best_candidate", "label_status", "hint", "token_ids", "probability", "heldout",
                            "references", "scorer", "source", "wall_time_s") if k in r}


def read_summary(path: str) -> dict:
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def write_summary(path: str, summary: dict) -> None:
  """Atomically: a run killed while writing leaves the previous summary."""
  with open(path + ".tmp", "w") as f:
    json.dump(summary, f, indent=1, ensure_ascii=False)
  os.replace(path + ".tmp", path)
