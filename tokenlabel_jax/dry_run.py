"""Size a labeling job before launching it: `python -m tokenlabel_jax.dry_run --preset=llama-3-8b-instruct`.

No weights are read. `jax.eval_shape` gives the parameter memory; the prefix caches follow from the config; the memory
of one optimization step comes from compiling it for abstract inputs (XLA's own buffer assignment, here on the host
backend, so a GPU/TPU figure will differ by its fusion choices) at two sizes and extrapolating linearly in B x F.
`--remat` sizes the job with rematerialized layers (label --remat), which keep far less for the backward pass.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from absl import app, flags, logging

from tokenlabel_jax import config as config_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import model as model_lib
from tokenlabel_jax import optimization as opt_lib
from tokenlabel_jax.errors import UserError, check_no_arguments, check_settings, exit_on_user_error, parse_flags

flags.DEFINE_string("preset", "llama-3-8b-instruct", f"One of {', '.join(config_lib.PRESETS)}.")
flags.DEFINE_enum("dtype", "bfloat16", ["float32", "bfloat16"], "Parameter and cache dtype.")
flags.DEFINE_integer("batch_size", 32, "Examples per step (B).")
flags.DEFINE_integer("features", 4, "Features per vmapped step (F).")
flags.DEFINE_integer("seeds", 4, "Restarts per feature (S).")
flags.DEFINE_integer("n_train", 128, "Prepared training examples held per feature (their prefix caches stay resident).")
flags.DEFINE_integer("prefix_len", 96, "Prompt tokens before the label slot (judge: chat header + text window).")
flags.DEFINE_integer("head_len", 20, "Of these, the head every example's prompt shares (chat header, instructions): "
                     "cached once per feature, not per example.")
flags.DEFINE_integer("suffix_len", 24, "Label slot + tokens after it.")
flags.DEFINE_float("device_memory_gb", 80.0, "Memory of one device, for the 'largest B x F that fits' answer.")
flags.DEFINE_integer("model_parallel", 1, "Devices one model replica is sharded over.")
flags.DEFINE_bool("remat", False, "Size the job with rematerialized layers (label --remat).")
FLAGS = flags.FLAGS

GB = 1024**3


def param_bytes(cfg, dtype) -> int:
  shapes = jax.eval_shape(lambda k: model_lib.init_params(cfg, k, dtype), jax.random.PRNGKey(0))
  return sum(math.prod(s.shape) * jnp.dtype(s.dtype).itemsize for s in jax.tree.leaves(shapes))


def cache_bytes_per_example(cfg, dtype, prefix_len: int) -> int:
  return 2 * cfg.n_layers * prefix_len * cfg.n_kv_heads * cfg.head_dim * jnp.dtype(dtype).itemsize


def abstract_prepared(cfg, dtype, F: int, B: int, H: int, T: int, S: int) -> disc_lib.Prepared:
  """F features x B examples: a shared head of H tokens, T own prefix tokens per example, S slot + suffix tokens."""
  sds = jax.ShapeDtypeStruct

  def cache(rows, length):
    kv = sds((F, cfg.n_layers, rows, length, cfg.n_kv_heads, cfg.head_dim), dtype)
    return model_lib.KVCache(kv, kv, sds((F, rows, length), jnp.bool_))

  return disc_lib.Prepared(
      shared=cache(1, H), cache=cache(B, T),
      prefix_len_B=sds((F, B), jnp.int32), logq_BxV=sds((F, B, cfg.vocab_size), jnp.float32),
      suffix_ids_BxS=sds((F, B, S - 1), jnp.int32), suffix_valid_BxS=sds((F, B, S - 1), jnp.bool_),
      readout_pos_BxR=sds((F, B, 2), jnp.int32), readout_tok_BxR=sds((F, B, 2), jnp.int32),
      readout_w_BxR=sds((F, B, 2), jnp.float32), baseline_B=sds((F, B), jnp.float32))


def step_temp_bytes(cfg, dtype, F: int, B: int, seeds: int, T: int, S: int, H: int = 0) -> int:
  """Temporary memory XLA assigns to one train step (minibatch B, F features, S seeds), inputs excluded."""
  disc = disc_lib.get("judge")
  lcfg = opt_lib.LabelConfig(seeds=seeds, batch_size=B)
  params = jax.eval_shape(lambda k: model_lib.init_params(cfg, k, dtype), jax.random.PRNGKey(0))
  label, opt_state = jax.eval_shape(lambda: (lambda st: (st.label, st.opt_state))(
      opt_lib.init_state(lcfg, cfg.vocab_size, F)))
  prep = abstract_prepared(cfg, dtype, F, B, H, T - H, S)
  sds = jax.ShapeDtypeStruct
  lowered = opt_lib.train_step.lower(cfg, disc, lcfg, label, opt_state, sds((), jnp.int32), params, prep,
                                     sds((F, B), jnp.float32), sds((F, cfg.vocab_size), jnp.float32),
                                     sds((cfg.vocab_size,), jnp.bool_))
  mem = lowered.compile().memory_analysis()
  return int(mem.temp_size_in_bytes)


def estimate(cfg, dtype, B, F, seeds, n_train, T, S, model_parallel=1, H=0) -> dict:
  """T prefix tokens per example, H of them a head shared by all examples (cached once per feature)."""
  p = param_bytes(cfg, dtype) / model_parallel
  per_ex = cache_bytes_per_example(cfg, dtype, T - H) / model_parallel
  caches = per_ex * F * max(n_train, B) + cache_bytes_per_example(cfg, dtype, H) * F / model_parallel
  # Step memory is close to linear in the number of examples in flight: measure F = 1 and 2 and extrapolate. The step
  # is compiled in float32 whatever the dtype: the host backend computes bfloat16 dots by making float32 copies of
  # all weights (measured: +2x the bfloat16 parameter bytes), which a GPU/TPU does not; float32 activations are an
  # upper bound for bfloat16 ones.
  t1 = step_temp_bytes(cfg, jnp.float32, 1, B, seeds, T, S, H)
  t2 = step_temp_bytes(cfg, jnp.float32, 2, B, seeds, T, S, H)
  per_feature_step = max(t2 - t1, 0)
  step = (t1 + (F - 1) * per_feature_step) / model_parallel
  return dict(params_gb=p / GB, cache_mb_per_example=per_ex / 2**20, caches_gb=caches / GB, step_gb=step / GB,
              total_gb=(p + caches + step) / GB,
              step_gb_per_example=per_feature_step / B / model_parallel / GB,
              fixed_gb=(p + (t1 - per_feature_step) / model_parallel) / GB)


@exit_on_user_error
def main(argv):
  check_no_arguments(argv, features_flag=False)
  logging.set_verbosity(logging.WARNING)  # jax notes at INFO that it found no TPU
  cfg = dataclasses.replace(config_lib.preset(FLAGS.preset), remat=FLAGS.remat)
  dtype = jnp.bfloat16 if FLAGS.dtype == "bfloat16" else jnp.float32
  if not 0 <= FLAGS.head_len < FLAGS.prefix_len:
    raise UserError(f"--head_len={FLAGS.head_len} must be at least 0 and less than --prefix_len={FLAGS.prefix_len}",
                    "lower --head_len")
  if FLAGS.suffix_len < 2:
    raise UserError("--suffix_len must be at least 2 (the label slot and an answer position)", "raise --suffix_len")
  check_settings(FLAGS, [(n, getattr(FLAGS, n) >= 1, "at least 1") for n in ("features", "model_parallel")])
  e = estimate(cfg, dtype, FLAGS.batch_size, FLAGS.features, FLAGS.seeds, FLAGS.n_train, FLAGS.prefix_len,
               FLAGS.suffix_len, FLAGS.model_parallel, FLAGS.head_len)
  print(f"{cfg.name}, {FLAGS.dtype}, B={FLAGS.batch_size} F={FLAGS.features} S={FLAGS.seeds} "
        f"prefix={FLAGS.prefix_len} (head {FLAGS.head_len}) suffix={FLAGS.suffix_len} "
        f"model_parallel={FLAGS.model_parallel}{' remat' if FLAGS.remat else ''}")
  print(f"  parameters            {e['params_gb']:8.2f} GB per device")
  print(f"  prefix cache          {e['cache_mb_per_example']:8.2f} MB per example (the head is stored once); "
        f"{e['caches_gb']:.2f} GB for {FLAGS.features} x {max(FLAGS.n_train, FLAGS.batch_size)} prepared examples")
  print(f"  one step (temporary)  {e['step_gb']:8.2f} GB")
  print(f"  total                 {e['total_gb']:8.2f} GB of {FLAGS.device_memory_gb:.0f} GB")
  # Examples in flight (B x F, each with its S seeds) cost step memory plus a prefix cache (with n_train = B).
  room = FLAGS.device_memory_gb * 0.9 - e["fixed_gb"]  # keep 10% for the runtime and fragmentation
  per_example = e["step_gb_per_example"] + e["cache_mb_per_example"] / 1024
  largest = int(room // per_example) if room > 0 else 0
  print(f"  step memory per example in flight (x{FLAGS.seeds} seeds): {e['step_gb_per_example'] * 1024:.0f} MB")
  print(f"  largest B x F that fits {FLAGS.device_memory_gb:.0f} GB (90%, n_train = B): {largest}")

if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
