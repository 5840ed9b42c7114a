"""The full-SAE labeling run, summarized: wall time, number labeled, and its labels' quality on the measured sample.

Run the labeling command under `/usr/bin/time -v` (README, 'Real features'), then:
python experiments/real_features/full_sae.py --run_dir=runs/fullsae_bulk --time_log=runs/fullsae_bulk.err

Writes `full_sae_labeling_s` (and a `full_sae_run` block) into experiments/results/real_features.json. The quality
figures compare, on the same 200 sampled latents and the same held-out examples (sampling depends only on the
feature and the seed), the full run's labels with the measured run's (default settings) and its baselines: cheaper
settings must show what they cost.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics

import numpy as np

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # experiments/
RESULTS = os.path.join(HERE, "results", "real_features.json")


def time_log(path: str) -> dict:
  """Wall time (s) and peak resident memory (GB) from a `/usr/bin/time -v` report."""
  text = open(path, encoding="utf-8", errors="replace").read()
  wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
  rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
  if not wall:
    raise SystemExit(f"error: no '/usr/bin/time -v' report in {path}\nfix: run the labeling command under "
                     "/usr/bin/time -v and pass the file its stderr went to")
  seconds = 0.0
  for part in wall.group(1).split(":"):
    seconds = seconds * 60 + float(part)
  return {"wall_s": round(seconds, 1), "peak_rss_gb": round(int(rss.group(1)) / 2**20, 2) if rss else None}


def main():
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--run_dir", required=True, help="--output_dir of the full labeling run")
  ap.add_argument("--time_log", required=True, help="its stderr, with the /usr/bin/time -v report at the end")
  ap.add_argument("--command", default="", help="the labeling command, recorded as given")
  args = ap.parse_args()
  with open(os.path.join(args.run_dir, "summary.json")) as f:
    summary = json.load(f)
  with open(RESULTS) as f:
    measured = json.load(f)
  timing = time_log(args.time_log)
  n_alive = measured["timing"]["alive_latents"]
  aucs = [r["heldout"]["auc"] for r in summary.values()]
  sample = {r["id"]: r for r in measured["latents"]}
  both = [n for n in sample if n in summary]
  ours = [summary[n]["heldout"]["auc"] for n in both]
  default = [sample[n]["heldout_auc"] for n in both]
  top = [sample[n]["baselines"]["top_token"]["heldout_auc"] for n in both]
  with open(os.path.join(args.run_dir, next(iter(summary)), "result.json")) as f:
    first = json.load(f)
  run = {
      "command": args.command,
      "settings": {"steps": first["config"]["steps"],
                   "seeds": first["config"]["seeds"] if first["config"]["steps"] else None,  # no gradient run: none
                   "select_margin": first["selection"]["margin"], "discriminator": first["discriminator"]},
      "labeled": len(summary), "alive_latents": n_alive,
      "with_label": sum(r["label"] is not None for r in summary.values()),
      **timing, "seconds_per_latent": round(timing["wall_s"] / max(1, len(summary)), 3),
      "median_heldout_auc_all": statistics.median(aucs) if aucs else None,
      "share_auc_ge_0.8_all": float(np.mean(np.array(aucs) >= 0.8)) if aucs else None,
      "sample": {"n": len(both), "median_auc_this_run": statistics.median(ours) if ours else None,
                 "median_auc_default_settings": statistics.median(default) if default else None,
                 "median_top_token_auc": statistics.median(top) if top else None,
                 "same_label_as_default": sum(summary[n]["best_candidate"] == sample[n]["best_candidate"]
                                              for n in both),
                 "no_label_this_run": sum(summary[n]["label"] is None for n in both)},
  }
  earlier = measured.get("full_sae_run")
  if earlier and earlier.get("command") != run["command"]:  # an earlier run's figures stay beside the new one
    measured.setdefault("full_sae_earlier_runs", []).append(earlier)
  measured["full_sae_labeling_s"] = timing["wall_s"] if len(summary) >= n_alive else None
  measured["full_sae_run"] = run
  with open(RESULTS, "w") as f:
    json.dump(measured, f, indent=1, ensure_ascii=False)
  _write_markdown(run, measured["full_sae_labeling_s"])
  print(json.dumps(run, indent=1, ensure_ascii=False))


SECTION = "\n## The full-SAE labeling run (experiments/real_features/full_sae.py)\n"


def _write_markdown(run: dict, full_s: float | None) -> None:
  """The run's figures as the last section of real_features.md (replacing an earlier run's), so a reader of the
  table sees the scale figure beside the quality figures."""
  path = RESULTS[:-len(".json")] + ".md"
  text = open(path, encoding="utf-8").read().split(SECTION)[0].rstrip("\n") + "\n"
  s = run["sample"]
  wall = (f"**{full_s:.0f} s ({full_s / 60:.0f} min)** for all {run['labeled']} alive latents" if full_s is not None
          else f"{run['wall_s']:.0f} s for {run['labeled']} of {run['alive_latents']} latents (not a full run)")
  text += (SECTION + f"\n`{run['command']}`\n\n- Wall time {wall}, {run['seconds_per_latent']} s per latent with "
           f"the warm-up, peak RSS {run['peak_rss_gb']} GB; settings {json.dumps(run['settings'])}.\n"
           f"- Over all of them: {run['with_label']} with a label, median held-out AUC "
           f"{run['median_heldout_auc_all']:.3f}, {run['share_auc_ge_0.8_all']:.1%} at >= 0.8.\n"
           f"- On the {s['n']} sampled latents above, same held-out examples: median AUC "
           f"{s['median_auc_this_run']:.3f} "
           f"(the table's settings {s['median_auc_default_settings']:.3f}, top-token baseline "
           f"{s['median_top_token_auc']:.3f}); {s['no_label_this_run']} without a label; "
           "the same best candidate as the "
           f"table for {s['same_label_as_default']}.\n")
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)


if __name__ == "__main__":
  main()
