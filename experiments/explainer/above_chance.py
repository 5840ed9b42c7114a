"""Could the combination's chance condition (`answers_above_chance`, added after the test half was measured) change
any of its test-half labels? It can only where the label the rule chose there matched an explainer answer: that
answer stays the choice when its validation AUC is above chance (lower 95% bound above `min_auc_lower`), since the
condition only takes answers away. This scores each such label on the validation examples its run used.

  python experiments/explainer/above_chance.py --model qwen2.5-coder-1.5b [--set test]

Reads explainer_rules_<set>_<model>.json (the chosen rule's labels) and explainer_<set>_<model>.json (the
explainer's answers); writes experiments/results/explainer_above_chance_<set>_<model>.{md,json}.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments import common  # pylint: disable=g-import-not-at-top
from experiments.explainer import compare, rules  # pylint: disable=g-import-not-at-top


def main():
  args, m, disc = common.setup("explainer_above_chance", __doc__, **{
      "--set": dict(default="test"), "--data": dict(default=os.path.join(common.DATA, "benchmark"))})
  from tokenlabel_jax import discriminators as disc_lib, labeling, selection  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.optimization import LabelConfig  # pylint: disable=import-outside-toplevel
  tuned = rules.chosen_labels(args.set, m.cfg.name)
  if tuned is None:
    sys.exit(f"No rule results for the {args.set} half with {m.cfg.name}: run `python experiments/explainer/rules.py "
             f"--model {m.cfg.name} --set {args.set}` first.")
  key, chosen = tuned
  with open(os.path.join(common.RESULTS, f"explainer_{args.set}_{m.cfg.name}.json")) as f:
    answers = {r["feature"]: r["explainer answers"] for r in json.load(f)["rows"]}
  features = {f.name: f for f in compare.features_and_names(args.set, args.data)[0]}
  lcfg, scfg = LabelConfig(steps=0), selection.SelectConfig()
  rows = []
  for name, label in chosen.items():
    if label.strip().lower() not in {a.strip().lower() for a in answers[name]}:
      continue
    sp = labeling.build_splits(m, features[name], disc, lcfg, keep_cache=True, prepare_train=False)
    row = labeling.evaluate_labels(m, disc, [disc_lib.encode_label(m.tokenizer, label)], sp["val"], sp["heldout"])[0]
    lower = selection.split_lower_bound(row["val_auc"], sp["val"], disc)  # as the rule's filter counts
    rows.append({"feature": name, "label": label, "val AUC": row["val_auc"], "val AUC lower95": lower,
                 "above chance": lower > scfg.min_auc_lower})
    print(rows[-1], flush=True)
  kept = sum(r["above chance"] for r in rows)
  notes = (f"{len(rows)} of {len(chosen)} labels of `{key}` match an explainer answer; {kept} of them are "
           f"above chance on validation, so the condition leaves them as they are; {len(rows) - kept} could change.")
  common.write_table(f"explainer_above_chance_{args.set}_{m.cfg.name}", rows,
                     ["feature", "label", "val AUC", "val AUC lower95", "above chance"],
                     f"The combination's answers under the chance condition ({args.set}, {m.cfg.name})", notes,
                     summary={"rule": key, "matched": len(rows), "above_chance": kept})


if __name__ == "__main__":
  main()
