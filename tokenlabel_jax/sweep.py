"""The λ trade-off (the paper's second open question) for one feature: one optimization per (λ_ent, λ_kl), all in
one compiled run.

The grid points train as a batch of copies of the feature (the same path as a batch of features: mapped for the
namer, vmapped for the model-running discriminators, split over devices by the feature axis), each copy with its own
λ. What each point reports is the optimizer's own answer, before any choice among candidates: the best seed's (lowest
final L_acc) most probable token, scored exactly on held-out examples, beside its naturalness, the mean log q of the
token at the slot over positive validation examples (what the KL term pulls toward).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, Sequence

import jax.numpy as jnp
import numpy as np

from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import labeling
from tokenlabel_jax import objective
from tokenlabel_jax import optimization as opt_lib
from tokenlabel_jax import selection
from tokenlabel_jax import sharding
from tokenlabel_jax import splits as splits_lib
from tokenlabel_jax.errors import UserError
from tokenlabel_jax.loading import LoadedModel


def tied_grid(values: Sequence[float]) -> np.ndarray:
  """(λ, λ) for each value: the default ties λ_ent and λ_kl, and so does the sweep unless told otherwise."""
  return np.asarray([[v, v] for v in values], np.float32)


def lambda_sweep(m: LoadedModel, feature: data_lib.Feature, disc: disc_lib.DiscriminatorConfig,
                 lcfg: opt_lib.LabelConfig, grid_Gx2: np.ndarray, place: sharding.FeaturePlacer | None = None,
                 log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
  """One row per grid point (λ_ent, λ_kl): the hard label the optimization reaches and its exact figures."""
  grid_Gx2 = np.asarray(grid_Gx2, np.float32)
  if grid_Gx2.ndim != 2 or grid_Gx2.shape[1] != 2 or not len(grid_Gx2) or (grid_Gx2 < 0).any():
    raise UserError(f"a λ grid is a list of (λ_ent, λ_kl) pairs >= 0 (got shape {grid_Gx2.shape})",
                    "give values such as 0,0.1,0.2,0.5,1")
  if lcfg.steps <= 0:
    raise UserError("a λ sweep needs a gradient run (steps=0)", "pass steps > 0 (300 by default)")
  place = place or sharding.FeaturePlacer(sharding.mesh_of(m.params))
  keep_cache = labeling.needs_cache(m, disc, lcfg, selection.SelectConfig(extend_top=0), ())
  sp = labeling.build_splits(m, feature, disc, lcfg, keep_cache)
  G = len(grid_Gx2)
  prep = place(disc_lib.stack([sp["train"].prep] * G))
  targets = np.stack([sp["train"].target_B] * G)
  mask_V = labeling.allowed_tokens(m, lcfg)
  state, history = opt_lib.train(m.params, m.cfg, disc, lcfg, prep, targets, mask_V, log=log or (lambda s: None),
                                 place=place, lam_Fx2=grid_Gx2)
  final = history[-1]
  picked, soft = [], []
  for g in range(G):
    seed = int(np.argmin(final["acc"][g]))
    logp_NxV = objective.label_logprobs(jnp.asarray(state.label["v_NxV"][g, seed]), jnp.asarray(mask_V))
    ids = [int(t) for t in np.asarray(logp_NxV).argmax(-1)]
    picked.append(ids)
    soft.append({"seed": seed, "top_p": float(np.exp(logp_NxV[0, ids[0]])),
                 "entropy": float(objective.entropy(logp_NxV)),  # H(p) as the loss counts it
                 "acc": float(final["acc"][g][seed]), "kl": float(final["kl"][g][seed])})
  rows = splits_lib.evaluate_labels(m, disc, picked, sp["val"], sp["heldout"])
  logq_pos = np.asarray(sp["val"].prep.logq_BxV)[sp["val"].positive_B]
  out = []
  for (lam_ent, lam_kl), ids, s, row in zip(grid_Gx2, picked, soft, rows):
    out.append({"lam_ent": float(lam_ent), "lam_kl": float(lam_kl),
                "label": m.tokenizer.decode(ids), "token_ids": ids,
                "naturalness": float(logq_pos[:, ids[0]].mean()), **s,
                "heldout_auc": row["auc"], "val_loss": row["val_loss"], "val_auc": row["val_auc"]})
  return out


def plot(rows_by_feature: dict[str, list[dict[str, Any]]], path: str, title: str) -> None:
  """Held-out AUC against naturalness: one point per feature and λ (colour: λ_kl), the medians per λ joined."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  lams = sorted({r["lam_kl"] for rows in rows_by_feature.values() for r in rows})
  cmap = plt.get_cmap("viridis")
  fig, ax = plt.subplots(figsize=(7, 5))
  med = []
  for i, lam in enumerate(lams):
    pts = [(r["naturalness"], r["heldout_auc"]) for rows in rows_by_feature.values() for r in rows
           if r["lam_kl"] == lam]
    colour = cmap(i / max(1, len(lams) - 1))
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=10, alpha=0.35, color=colour)
    med.append((float(np.median([p[0] for p in pts])), float(np.median([p[1] for p in pts]))))
    ax.scatter(*med[-1], s=70, color=colour, edgecolor="black", label=f"λ = {lam:g}", zorder=3)
  ax.plot([x for x, _ in med], [y for _, y in med], color="black", lw=1, zorder=2)
  ax.set_xlabel("naturalness: mean log q(label) at the slot over positive examples")
  ax.set_ylabel("held-out AUC (the optimized discriminator)")
  ax.set_title(title, fontsize=10)
  ax.legend(fontsize=7, loc="lower left")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def parse_values(values: Sequence[str]) -> np.ndarray:
  """--lambda_sweep's values -> the tied grid, or a UserError (checked before the model loads)."""
  try:
    return tied_grid([float(v) for v in values])
  except ValueError:
    raise UserError(f"--lambda_sweep takes numbers (got {','.join(values)})", "e.g. --lambda_sweep=0,0.1,0.2,0.5,1"
                    ) from None


def run_and_write(m: LoadedModel, features: Sequence[data_lib.Feature], disc: disc_lib.DiscriminatorConfig,
                  lcfg: opt_lib.LabelConfig, values: Sequence[str], output_dir: str,
                  place: sharding.FeaturePlacer | None = None, write: bool = True) -> dict[str, list[dict[str, Any]]]:
  """The launcher's --lambda_sweep: per feature, DIR/<feature>/lambda_sweep.json (the rows) and lambda_sweep.png."""
  grid = parse_values(values)
  say = (lambda s: print(s, file=sys.stderr, flush=True)) if write else (lambda s: None)
  out = {}
  for f in features:
    say(f"[{f.name}] λ sweep over {', '.join(values)} ({disc.name} discriminator, {lcfg.steps} steps)")
    rows = out[f.name] = lambda_sweep(m, f, disc, lcfg, grid, place, say)
    for r in rows:
      say(f"  λ_ent {r['lam_ent']:g}, λ_kl {r['lam_kl']:g}: {r['label']!r} (p={r['top_p']:.2f}, held-out AUC "
          f"{r['heldout_auc']:.3f}, naturalness {r['naturalness']:.2f})")
    if write:
      d = os.path.join(output_dir, f.name)
      os.makedirs(d, exist_ok=True)
      with open(os.path.join(d, "lambda_sweep.json"), "w") as fh:
        json.dump({"feature": f.name, "discriminator": disc.name, "model": m.cfg.name, "steps": lcfg.steps,
                   "rows": rows}, fh, indent=1, ensure_ascii=False)
      plot({f.name: rows}, os.path.join(d, "lambda_sweep.png"), f"{f.name}: each λ's own label")
  return out
