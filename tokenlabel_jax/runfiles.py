"""What every launcher (label, explain) writes alike: the run directory's files, one summary entry per feature, and
the progress line of each batch."""

from __future__ import annotations

import json
import os
import sys
import time

from tokenlabel_jax.errors import UserError


def batch_line(start: int, names: list[str], total: int, t0: float) -> str:
  """"features 5-8 of 4608 (0.4 min so far, about 180.2 min left): a, b, c, d"; a run over thousands of latents takes
  tens of minutes, so after the first batch (which also compiles) it says about how many are left."""
  spent = time.monotonic() - t0
  pace = f" ({spent / 60:.1f} min so far, about {spent / start * (total - start) / 60:.1f} min left)" if start else ""
  return f"features {start + 1}-{start + len(names)} of {total}{pace}: {', '.join(names)}"


def failed_error(failed: list[str], total: int, output_dir: str | None, why: list[str] = ()) -> UserError:
  """The one error a run ends with when some of its features failed: `why`, each one's own error line where the run
  printed none; `output_dir` None for a run that keeps nothing."""
  kept = (f"finished features are kept in {os.path.join(output_dir, 'summary.json')}" if output_dir
          else "pass output_dir to keep the finished features")
  return UserError(f"{len(failed)} of {total} features failed: {', '.join(failed)}" + "".join(f"\n  {w}" for w in why),
                   ("mend those features' records" if why else "see the messages above") + "; " + kept)


def check_all_done(names: list[str], results: list[dict], output_dir: str | None, why: list[str] = ()) -> None:
  """Raises `failed_error` for the features among `names` that have no result (a run that went on past them)."""
  done = {r["feature"] for r in results}
  failed = [n for n in names if n not in done]
  if failed:
    raise failed_error(failed, len(names), output_dir, why)


def summary_entry(r: dict) -> dict:
  """What summary.json keeps of a feature's result.json."""
  return {k: r[k] for k in ("label", "best_candidate", "label_status", "hint", "token_ids", "probability", "heldout",
                            "references", "scorer", "source", "wall_time_s") if k in r}


def check_writable(folder: str, what: str) -> None:
  """Makes `folder` and writes a probe file in it (one per process of a multi-host job), so a launcher refuses an
  unwritable destination before its work, not after; `what` names it in the message (e.g. "--output_dir=runs")."""
  try:
    os.makedirs(folder, exist_ok=True)
    probe = os.path.join(folder, f".write_test.{os.getpid()}")
    open(probe, "w").close()
    os.remove(probe)
  except OSError as e:
    raise UserError(f"cannot write to {what} ({e.strerror})", "choose a writable directory") from None


def check_apart(features, output_dir: str, flag: str = "--") -> None:
  """Refuses a features folder that is also the output folder: the run writes explanations.jsonl there, which the
  next run (a resume) would read as a feature file. `flag` prefixes the setting names in the message."""
  if isinstance(features, (str, os.PathLike)) and os.path.realpath(features) == os.path.realpath(output_dir):
    raise UserError(f"{flag}features and {flag}output_dir are one folder ({output_dir}): the run's explanations.jsonl "
                    "would be read as features by the next run", f"give {flag}output_dir another folder, e.g. "
                    f"{os.path.join(os.fspath(output_dir), 'labels')}")


def read_summary(path: str) -> dict:
  """The run's summary.json; an unreadable one (edited by hand, a full disk) is rebuilt from the result.json files
  beside it, which hold everything it keeps, so no finished feature drops out of it."""
  if not os.path.exists(path):
    return {}
  try:
    with open(path, encoding="utf-8") as f:
      summary = json.load(f)
    if isinstance(summary, dict):
      return summary
  except (OSError, ValueError):
    pass
  run_dir = os.path.dirname(path)
  summary = {}
  for name in sorted(os.listdir(run_dir)):
    try:
      with open(os.path.join(run_dir, name, "result.json"), encoding="utf-8") as f:
        r = json.load(f)
      summary[r.get("feature", name)] = summary_entry(r)
    except (OSError, ValueError, AttributeError):  # no result here, or an unreadable one: that feature runs again
      continue
  print(f"warning: {path} was unreadable; rebuilt from the {len(summary)} result.json files beside it",
        file=sys.stderr)
  return summary


class WriteError(UserError):
  """A run's file could not be written (a full disk, a folder removed): every later feature would fail alike, so the
  launchers end the run here instead of going on to the next feature."""


_RESUMES = "free disk space (or restore the folder); features finished before are kept, and the same command resumes"

FINISHED_REWRITE = ("free disk space (or restore the folder) and run the same command or call again: it finds every "
                    "feature done and writes the report and explanation files anew; the labels are in each feature's "
                    "result.json")


def write_text(path: str, text: str, fix: str = _RESUMES) -> None:
  """Atomically: a run killed while writing leaves the previous file, or none, never half of one (a resumed run
  trusts a result.json it can read). A full disk is one message, not a traceback; `fix` says what the user can do."""
  tmp = path + ".tmp"
  try:
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(text)
    os.replace(tmp, path)
  except OSError as e:
    try:
      os.remove(tmp)
    except OSError:
      pass
    raise WriteError(f"cannot write {path} ({e.strerror})", fix) from None


def write_json(path: str, obj, indent: int | None = None, fix: str = _RESUMES) -> None:
  write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False), fix)


def write_summary(path: str, summary: dict) -> None:
  write_json(path, summary, indent=1)
