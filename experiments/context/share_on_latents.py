"""How often does a real latent follow the context rather than the word, by the measure `label`'s hint uses?

  python experiments/context/share_on_latents.py
    # after the 1.5B ask-rule runs of experiments/real_features (their latents)

Per latent of the 200-latent sample: the share of its held-out positives whose word is also a negative's word
(data.shared_word_share, on the examples `label` draws by default), and whether the 1.5B model's ask-rule run gave no
label, in which case the run would now print the hint (share >= labeling.CONTEXT_HINT_SHARE). No model is run.
"""

from __future__ import annotations

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top

SLICES = ("first32", "next32", "65to96", "97to200")


def main():
  from tokenlabel_jax import data as data_lib, labeling, optimization  # pylint: disable=import-outside-toplevel
  latents = []
  for s in SLICES:
    with open(os.path.join(common.RESULTS, f"real_features_qwen2.5-coder-1.5b_ask_{s}.json"), encoding="utf-8") as f:
      latents += json.load(f)["latents"]
  lcfg = optimization.LabelConfig()
  rows = []
  for r in latents:
    feature = data_lib.load_features(os.path.join("runs", "sae", "latents", r["id"] + ".jsonl"))[0]
    share = data_lib.shared_word_share(labeling.sample_split(feature, lcfg, "heldout"))
    rows.append({"id": r["id"], "share": share, "no label": r["label"] is None,
                 "label or best": r["label"] or r["best_candidate"], "top token": r["baselines"]["top_token"]["label"]})
  rows.sort(key=lambda x: -x["share"])
  high = [x for x in rows if x["share"] >= labeling.CONTEXT_HINT_SHARE]
  summary = {"latents": len(rows), "median share": statistics.median(x["share"] for x in rows),
             "share >= hint bar": len(high), "no label": sum(x["no label"] for x in rows),
             "no label and share >= hint bar (the hint fires)": sum(x["no label"] for x in high)}
  common.write_table("context_share_latents", rows[:30], list(rows[0]),
                     "Real latents whose positive words are also negatives' words (the 30 highest shares)",
                     "; ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in summary.items()),
                     summary=summary)


if __name__ == "__main__":
  main()
