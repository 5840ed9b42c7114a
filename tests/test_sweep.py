"""The λ sweep on a tiny random model: each grid point is the run a single λ would give, and its figures are exact."""

from __future__ import annotations

import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest

from test_labeling import LCFG, feature, tiny  # pylint: disable=unused-import  # the fixtures, module-scoped
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import labeling
from tokenlabel_jax import objective
from tokenlabel_jax import optimization as opt_lib
from tokenlabel_jax import splits as splits_lib
from tokenlabel_jax import sweep
from tokenlabel_jax.errors import UserError


@pytest.mark.parametrize("disc_name", ["namer", "judge"])  # mapped over the grid, and vmapped
def test_each_grid_point_is_the_run_of_its_own_lambda(tiny, feature, disc_name):
  """A grid point's label and figures are those of a plain run with that (λ_ent, λ_kl) in the config; points of
  different λ differ (so the per-point λ is really applied, not the config's)."""
  disc = disc_lib.get(disc_name)
  lcfg = dataclasses.replace(LCFG, steps=8, ent_anneal=False, kl_anneal=False)
  grid = np.asarray([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]], np.float32)
  rows = sweep.lambda_sweep(tiny, feature, disc, lcfg, grid)
  assert [(r["lam_ent"], r["lam_kl"]) for r in rows] == [(0.0, 0.0), (3.0, 0.0), (0.0, 3.0)]
  sp = labeling.build_splits(tiny, feature, disc, lcfg)
  mask = np.ones(tiny.cfg.vocab_size, bool)
  finals = []
  for (ent, kl), row in zip(grid, rows):
    one = dataclasses.replace(lcfg, lam_ent=float(ent), lam_kl=float(kl))
    state, history = opt_lib.train(tiny.params, tiny.cfg, disc, one, disc_lib.stack([sp["train"].prep]),
                                   sp["train"].target_B[None], mask, log=lambda s: None)
    seed = int(np.argmin(history[-1]["acc"][0]))
    p = np.asarray(objective.label_probs(jnp.asarray(state.label["v_NxV"][0, seed]), jnp.asarray(mask)))
    assert row["seed"] == seed and row["token_ids"] == [int(p[0].argmax())]
    np.testing.assert_allclose(row["top_p"], p[0].max(), rtol=1e-4)
    np.testing.assert_allclose(row["kl"], history[-1]["kl"][0][seed], rtol=1e-4, atol=1e-6)
    want = splits_lib.evaluate_labels(tiny, disc, [row["token_ids"]], sp["val"], sp["heldout"])[0]
    assert row["heldout_auc"] == pytest.approx(want["auc"]) and row["val_loss"] == pytest.approx(want["val_loss"])
    logq = np.asarray(sp["val"].prep.logq_BxV)[sp["val"].positive_B]
    assert row["naturalness"] == pytest.approx(float(logq[:, row["token_ids"][0]].mean()), rel=1e-5)
    finals.append(row["entropy"])
  # λ_ent = 3 lowers the soft label's entropy against λ = 0; λ_kl = 3 pulls it toward q (a spread distribution).
  assert finals[1] < finals[0] < finals[2]


def test_bad_grids_and_no_steps_are_user_errors(tiny, feature):
  for grid in ([], [[0.1]], [[-1.0, 0.0]]):
    with pytest.raises(UserError, match="λ grid"):
      sweep.lambda_sweep(tiny, feature, disc_lib.get("namer"), LCFG, np.asarray(grid, np.float32))
  with pytest.raises(UserError, match="gradient run"):
    sweep.lambda_sweep(tiny, feature, disc_lib.get("namer"), dataclasses.replace(LCFG, steps=0), sweep.tied_grid([0]))


def test_launcher_sweep_writes_rows_and_plot_per_feature(tiny, feature, tmp_path):
  lcfg = dataclasses.replace(LCFG, steps=4)
  out = sweep.run_and_write(tiny, [feature], disc_lib.get("namer"), lcfg, ["0", "0.5"], str(tmp_path))
  on_disk = json.load(open(tmp_path / feature.name / "lambda_sweep.json"))
  assert on_disk["rows"] == json.loads(json.dumps(out[feature.name]))
  assert [r["lam_kl"] for r in on_disk["rows"]] == [0.0, 0.5] and on_disk["steps"] == 4
  assert (tmp_path / feature.name / "lambda_sweep.png").stat().st_size > 1000
  with pytest.raises(UserError, match="takes numbers"):
    sweep.run_and_write(tiny, [feature], disc_lib.get("namer"), lcfg, ["a"], str(tmp_path))
