"""The dry run's memory figures agree with real arrays of a tiny model."""

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

import tinymodel
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import dry_run


def test_param_and_cache_bytes_match_real_arrays():
  m = tinymodel.tiny_model()
  real = sum(x.nbytes for x in jax.tree.leaves(m.params))
  assert dry_run.param_bytes(m.cfg, jnp.float32) == real
  assert dry_run.param_bytes(m.cfg, jnp.bfloat16) == real // 2
  prep = disc_lib.prepare(m.params, m.cfg, m.tokenizer, disc_lib.get("judge"),
                          [disc_lib.ExampleText("dog", "a [[dog]] here")])
  T = prep.cache.valid_BxT.shape[1]
  cache = prep.cache.k_LxBxTxKxE.nbytes + prep.cache.v_LxBxTxKxE.nbytes
  assert dry_run.cache_bytes_per_example(m.cfg, jnp.float32, T) == cache


def test_step_memory_grows_with_features_and_batch():
  m = tinymodel.tiny_model()
  small = dry_run.step_temp_bytes(m.cfg, jnp.float32, 1, 4, 2, 16, 4)
  more_features = dry_run.step_temp_bytes(m.cfg, jnp.float32, 2, 4, 2, 16, 4)
  more_batch = dry_run.step_temp_bytes(m.cfg, jnp.float32, 1, 16, 2, 16, 4)
  assert 0 < small < more_features and small < more_batch
  e = dry_run.estimate(m.cfg, jnp.float32, 4, 3, 2, 8, 16, 4)
  assert np.isclose(e["total_gb"], e["params_gb"] + e["caches_gb"] + e["step_gb"])


def test_remat_shrinks_step_memory_per_example():
  m = tinymodel.tiny_model(n_layers=4)
  plain = dry_run.estimate(m.cfg, jnp.float32, 8, 2, 2, 8, 16, 8)
  remat = dry_run.estimate(dataclasses.replace(m.cfg, remat=True), jnp.float32, 8, 2, 2, 8, 16, 8)
  assert 0 < remat["step_gb_per_example"] < plain["step_gb_per_example"]
  assert remat["params_gb"] == plain["params_gb"] and remat["caches_gb"] == plain["caches_gb"]


def test_cli_refuses_counts_below_one_and_stray_arguments():
  """Was: a table of figures for zero features, and a stray argument (a flag without --) ignored; now one message
  naming the flag."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  for flag, expect in (("--features=0", "features=0 is not allowed"), ("--model_parallel=0",
                       "model_parallel=0 is not allowed"), ("batch_size=8", "unexpected arguments ['batch_size=8']")):
    proc = subprocess.run([sys.executable, "-m", "tokenlabel_jax.dry_run", flag], capture_output=True, text=True,
                          cwd=root, timeout=120, check=False)
    assert proc.returncode == 2 and expect in proc.stderr and "Traceback" not in proc.stderr
