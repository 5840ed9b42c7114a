"""Optimizing the label: S restarts (seeds) in one vmapped, jitted AdamW step; orbax checkpoints; exact verification.

Only the label pytree is trained. The frozen model's params are an argument of the jitted step (not a closure), so
XLA never folds hundreds of MB of weights into the program.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import shutil
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import objective
from tokenlabel_jax import sharding
from tokenlabel_jax.config import ModelConfig
from tokenlabel_jax.errors import UserError, check_settings, check_types

_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclasses.dataclass(frozen=True)
class LabelConfig:
  """Everything that shapes one labeling run (the model and discriminator are chosen separately)."""

  steps: int = 300
  seeds: int = 4
  batch_size: int = 32
  learning_rate: float = 0.1
  weight_decay: float = 0.01
  lam_ent: float = 0.2
  lam_kl: float = 0.2
  # Ramping λ_ent and λ_kl up from 0 lets the task signal lead early; constant λ (the paper) lets the KL prior pull
  # every feature of the namer toward the template's generic continuation (measured: docs/method.md, the ablation).
  ent_anneal: bool = True
  kl_anneal: bool = True
  forcing: str = "none"  # none | straight_through | gumbel
  gumbel_temperature: tuple[float, float] = (2.0, 0.1)
  label_slots: int = 1
  vocab_filter: str = "words"  # words | all
  top_k: int = 8  # candidates per seed re-scored exactly as hard labels
  n_train: int = 128
  n_val: int = 64
  n_heldout: int = 128
  positive_fraction: float = 0.5
  negatives: str = "random"
  target_mode: str = "binary"
  threshold: float = 0.0  # a token is positive when its activation exceeds this (sampling, checks, metrics)
  target_scale_quantile: float = 0.9  # continuous mode: target = activation / this quantile of positive activations
  checkpoint_every: int = 50
  log_every: int = 25
  seed: int = 0

  def __post_init__(self):
    """Refuses a setting that would end in a traceback or in figures that mean nothing, naming the field."""
    check_types(self)
    checks = [
        ("steps", self.steps >= 0, "at least 0"), ("seeds", self.seeds >= 1, "at least 1"),
        ("batch_size", self.batch_size >= 1, "at least 1"), ("top_k", self.top_k >= 1, "at least 1"),
        ("label_slots", self.label_slots >= 1, "at least 1"), ("n_train", self.n_train >= 0, "at least 0"),
        ("n_val", self.n_val >= 1, "at least 1"), ("n_heldout", self.n_heldout >= 1, "at least 1"),
        ("checkpoint_every", self.checkpoint_every >= 1, "at least 1"),
        ("log_every", self.log_every >= 1, "at least 1"),
        ("learning_rate", math.isfinite(self.learning_rate) and self.learning_rate > 0, "a number above 0"),
        ("weight_decay", math.isfinite(self.weight_decay) and self.weight_decay >= 0, "a number of at least 0"),
        ("lam_ent", math.isfinite(self.lam_ent) and self.lam_ent >= 0, "a number of at least 0"),
        ("lam_kl", math.isfinite(self.lam_kl) and self.lam_kl >= 0, "a number of at least 0"),
        ("threshold", math.isfinite(self.threshold) and abs(self.threshold) <= _FLOAT32_MAX,
         "a finite number within float32 range (activations are float32)"),
        ("positive_fraction", 0 < self.positive_fraction < 1, "between 0 and 1 (both kinds are needed for an AUC)"),
        ("target_scale_quantile", 0 < self.target_scale_quantile <= 1, "in (0, 1]"),
        ("forcing", self.forcing in ("none", "straight_through", "gumbel"), "none, straight_through or gumbel"),
        ("vocab_filter", self.vocab_filter in ("words", "all"), "words or all"),
        ("target_mode", self.target_mode in ("binary", "continuous"), "binary or continuous"),
        ("negatives", self.negatives in data_lib.NEGATIVE_MODES, " or ".join(data_lib.NEGATIVE_MODES)),
    ]
    check_settings(self, checks, {"weight_decay": None, "label_slots": None, "top_k": None})  # no flag sets these


@dataclasses.dataclass
class TrainState:
  label: dict[str, jax.Array]  # stacked: F features x S seeds x ...
  opt_state: Any
  step: int


def make_optimizer(lcfg: LabelConfig) -> optax.GradientTransformation:
  return optax.adamw(lcfg.learning_rate, weight_decay=lcfg.weight_decay)


def init_state(lcfg: LabelConfig, vocab_size: int, n_features: int = 1) -> TrainState:
  """The same S seeds for every feature, so a feature's run does not depend on the batch it is labeled in."""
  keys = jax.random.split(jax.random.PRNGKey(lcfg.seed), lcfg.seeds)
  label = jax.vmap(lambda k: objective.init_label(k, lcfg.label_slots, vocab_size))(keys)
  label = jax.tree.map(lambda x: jnp.broadcast_to(x, (n_features, *x.shape)), label)
  return TrainState(label, make_optimizer(lcfg).init(label), 0)


def lambdas(lcfg: LabelConfig, step: jax.Array, lam_2: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """λ_ent, λ_kl at `step` (the feature's own `lam_2` = (λ_ent, λ_kl), annealed as lcfg says) and the Gumbel
  temperature. Per feature, so that a sweep over λ trains as one batch of features (`sweep.lambda_sweep`)."""
  frac = step / max(1, lcfg.steps - 1)
  ent, kl = lam_2[0], lam_2[1]
  lam_ent = ent * frac if lcfg.ent_anneal else jnp.asarray(ent, jnp.float32)
  t0, t1 = lcfg.gumbel_temperature
  temperature = t0 * (t1 / t0) ** frac
  lam_kl = kl * frac if lcfg.kl_anneal else jnp.asarray(kl, jnp.float32)
  return lam_ent, lam_kl, temperature


def _feature_step(cfg: ModelConfig, disc: disc_lib.DiscriminatorConfig, lcfg: LabelConfig, label, step, params,
                  prep: disc_lib.Prepared, target_B, logq_ref_V, mask_V, lam_2):
  """Loss parts and gradients of every seed of one feature, on a minibatch drawn deterministically from `step`."""
  key = jax.random.fold_in(jax.random.PRNGKey(lcfg.seed + 1), step)
  n = target_B.shape[0]
  rows = jax.random.permutation(key, n)[:min(lcfg.batch_size, n)]
  batch = disc_lib.take_rows(prep, rows)
  lam_ent, lam_kl, temp = lambdas(lcfg, step, lam_2)
  seed_keys = jax.random.split(key, lcfg.seeds)

  def one(lab, k):
    return objective.loss(lab, params, cfg, disc, batch, target_B[rows], logq_ref_V, mask_V, lam_ent, lam_kl,
                          lcfg.forcing, k, temp)

  (_, parts), grads = jax.vmap(jax.value_and_grad(one, has_aux=True))(label, seed_keys)
  return parts, grads


def _step(cfg: ModelConfig, disc: disc_lib.DiscriminatorConfig, lcfg: LabelConfig, label, opt_state, step,
          params, prep: disc_lib.Prepared, target_FxB, logq_ref_FxV, mask_V, lam_Fx2=None):
  """One AdamW step for F features x S seeds at once (features vmapped; shard them across devices by the inputs').
  `lam_Fx2`: each feature's (λ_ent, λ_kl); by default lcfg's for all."""
  if lam_Fx2 is None:
    lam_Fx2 = jnp.broadcast_to(jnp.asarray([lcfg.lam_ent, lcfg.lam_kl], jnp.float32), (target_FxB.shape[0], 2))
  if disc.kind == "namer":
    # The namer's step is a few memory-bound, vocabulary-wide products per feature. Vmapped over features, XLA gathers
    # the minibatch rows into a transposed copy (2.5x slower per feature than one feature alone); a loop over the
    # features keeps each product plain and one feature's arrays in cache (measured: 5.7 ms per feature-step at
    # F = 16, 5.1 ms alone). The namer reads no KV cache.
    parts, grads = jax.lax.map(
        lambda xs: _feature_step(cfg, disc, lcfg, xs[0], step, params, xs[1], xs[2], xs[3], mask_V, xs[4]),
        (label, dataclasses.replace(prep, cache=None, shared=None), target_FxB, logq_ref_FxV, lam_Fx2))
  else:  # the model-running discriminators gain from batching: larger matrix products
    parts, grads = jax.vmap(_feature_step, in_axes=(None, None, None, 0, None, None, 0, 0, 0, None, 0))(
        cfg, disc, lcfg, label, step, params, prep, target_FxB, logq_ref_FxV, mask_V, lam_Fx2)
  updates, opt_state = make_optimizer(lcfg).update(grads, opt_state, label)
  label = optax.apply_updates(label, updates)
  # The most probable token and its p (what the log and the trajectory plot show): two reductions over v, a third of
  # the cost of a top-k over p.
  v_FxSxV = jnp.where(mask_V, label["v_NxV"][:, :, 0], objective._MASKED)
  top_id = jnp.argmax(v_FxSxV, axis=-1)[..., None]
  top_p = jnp.exp(jnp.max(v_FxSxV, axis=-1) - jax.scipy.special.logsumexp(v_FxSxV, axis=-1))[..., None]
  return label, opt_state, {**parts, "top_p": top_p, "top_id": top_id}


train_step = jax.jit(_step, static_argnums=(0, 1, 2), donate_argnums=(3, 4))


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3), donate_argnums=(4, 5))
def train_steps(cfg: ModelConfig, disc: disc_lib.DiscriminatorConfig, lcfg: LabelConfig, n: int, label, opt_state,
                start, params, prep: disc_lib.Prepared, target_FxB, logq_ref_FxV, mask_V, lam_Fx2=None):
  """`n` steps from step `start` in one compiled call (the same arithmetic as `train_step` n times): a step of the
  namer is a few milliseconds of work, and a call per step spent as long again in dispatch and host copies. The
  loss parts come back per feature and step (F x n x ...)."""
  def body(carry, i):
    lab, opt = carry
    lab, opt, parts = _step(cfg, disc, lcfg, lab, opt, start + i, params, prep, target_FxB, logq_ref_FxV, mask_V,
                            lam_Fx2)
    return (lab, opt), parts

  (label, opt_state), parts_nxF = jax.lax.scan(body, (label, opt_state), jnp.arange(n))
  return label, opt_state, jax.tree.map(lambda x: jnp.moveaxis(x, 0, 1), parts_nxF)


def reference_logq(logq_FxBxV: jax.Array, target_FxB: jax.Array) -> jax.Array:
  """The KL term's q: the model's distribution at the label slot, averaged (in log space) over positive examples.

  What the model would itself write in the slot for tokens where the feature fires; averaging over all examples
  instead pulls every feature toward the template's generic continuation (' day' after a few-shot list of kinds).
  """
  w_FxB = target_FxB / jnp.maximum(target_FxB.sum(-1, keepdims=True), 1e-6)
  return jnp.einsum("fb,fbv->fv", w_FxB, logq_FxBxV)


class Checkpointer:
  """Orbax checkpoints of the train state plus the loss history (JSON), so a killed run resumes bit-exactly."""

  def __init__(self, directory: str, max_to_keep: int = 2):
    import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
    self._ocp = ocp
    self.manager = ocp.CheckpointManager(os.path.abspath(directory),
                                         options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep))

  def save(self, state: TrainState, history: list[dict[str, Any]], extra: dict[str, Any]):
    ocp = self._ocp
    tree = {"label": state.label, "opt_state": state.opt_state}
    self.manager.save(state.step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave({"history": history, **extra})))
    self.manager.wait_until_finished()

  def restore(self, like: TrainState, log: Callable[[str], None] | None = None,
              fingerprint: dict[str, Any] | None = None
              ) -> tuple[TrainState, list[dict[str, Any]], dict[str, Any]] | None:
    """The newest checkpoint that reads back whole; unreadable ones (a disk error, a killed copy, overwritten bytes)
    are moved aside with a warning, so the run falls back to an older one or starts over instead of failing. A
    readable checkpoint of other settings (`fingerprint`) is refused, never moved."""
    log = log or (lambda s: print(s, file=sys.stderr))
    ocp = self._ocp
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        meta = dict(self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])
      except Exception as e:  # pylint: disable=broad-except  # orbax raises whatever the damaged bytes provoke
        self._unreadable(step, e, log)
        continue
      if fingerprint is not None and meta.get("fingerprint") != fingerprint:
        raise UserError(f"the checkpoint in this output directory was made with other settings "
                        f"({meta.get('fingerprint')} vs {fingerprint})",
                        "use a new --output_dir, or delete its checkpoints to start over")
      try:
        return self._restore(step, like)
      except Exception as e:  # pylint: disable=broad-except
        self._unreadable(step, e, log)
    return None

  def _unreadable(self, step: int, e: Exception, log: Callable[[str], None]) -> None:
    aside = self._move_aside(step)
    log(f"  warning: checkpoint at step {step} is unreadable ({type(e).__name__}); moved to {aside}, trying an "
        "older one")

  def _restore(self, step: int, like: TrainState):
    ocp = self._ocp
    tree = {"label": like.label, "opt_state": like.opt_state}
    out = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(tree),
                                                             meta=ocp.args.JsonRestore()))
    meta = dict(out["meta"])
    history = meta.pop("history")
    if not isinstance(history, list) or len(history) != step:
      raise ValueError(f"history of {len(history)} steps in the checkpoint of step {step}")
    st = out["state"]
    return TrainState(jax.tree.map(jnp.asarray, st["label"]), jax.tree.map(jnp.asarray, st["opt_state"]), step), \
        history, meta

  def _move_aside(self, step: int) -> str:
    """Renames a damaged step directory to `corrupt-<step>` (kept for inspection, out of orbax's sight)."""
    directory = str(self.manager.directory)
    src, dst = os.path.join(directory, str(step)), os.path.join(directory, f"corrupt-{step}")
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(src, dst)
    self.manager.reload()
    return dst


def train(params, cfg: ModelConfig, disc: disc_lib.DiscriminatorConfig, lcfg: LabelConfig, prep: disc_lib.Prepared,
          target_FxB: np.ndarray, mask_V: np.ndarray, checkpointer: Checkpointer | None = None,
          log: Callable[[str], None] | None = None, fingerprint: dict[str, Any] | None = None,
          place: sharding.FeaturePlacer | None = None, lam_Fx2: np.ndarray | None = None
          ) -> tuple[TrainState, list[dict[str, Any]]]:
  """Runs (or resumes) the optimization of F features stacked along the leading axis of `prep` and `target_FxB`.

  Returns the final state (numpy, F features) and a per-step history of loss parts (each entry F x S). `place` puts
  feature-stacked arrays on devices (split along a mesh's feature axis, padded to fill it); by default on the devices
  the model's parameters are on. Checkpoints hold the F real features, so a run resumes on any number of devices.
  `lam_Fx2`: each feature's (λ_ent, λ_kl) in place of lcfg's (a λ sweep: `sweep.lambda_sweep`).
  """
  log = log or (lambda s: print(s, file=sys.stderr))
  place = place or sharding.FeaturePlacer(sharding.mesh_of(params))
  if not np.all(np.isfinite(target_FxB)):
    raise UserError("training targets contain NaN or infinity", "check the activations of this feature")
  n_features = target_FxB.shape[0]
  mask = place.replicate(jnp.asarray(mask_V))
  prep = place(prep)
  targets = place(np.asarray(target_FxB, np.float32))
  logq_ref = _reference_logq(prep.logq_BxV, targets)
  lams = None if lam_Fx2 is None else place(np.asarray(lam_Fx2, np.float32))  # None: lcfg's λ (`_step`)
  state, history = init_state(lcfg, cfg.vocab_size, n_features), []
  fingerprint = fingerprint or {}
  if checkpointer is not None:
    had_checkpoints = bool(checkpointer.manager.all_steps())
    restored = checkpointer.restore(state, log, fingerprint)
    if restored is None and had_checkpoints:
      log("  warning: no checkpoint could be read; starting over from step 0")
    if restored is not None:
      state, history, meta = restored
      if meta.get("fingerprint") != fingerprint:
        raise UserError(f"the checkpoint in this output directory was made with other settings "
                        f"({meta.get('fingerprint')} vs {fingerprint})",
                        "use a new --output_dir, or delete its checkpoints to start over")
      log(f"  resumed from step {state.step}")
  label, opt_state = place(state.label), place(state.opt_state)
  t0 = time.time()
  step = state.step
  while step < lcfg.steps:
    # Up to the next log line or checkpoint in one call.
    n = min([lcfg.steps] + [step // e * e + e for e in (lcfg.log_every, lcfg.checkpoint_every) if e > 0]) - step
    label, opt_state, parts = train_steps(cfg, disc, lcfg, n, label, opt_state, place.replicate(jnp.asarray(step)),
                                          params, prep, targets, logq_ref, mask, lams)
    parts = place.to_host(parts, n_features)  # F x n x ...
    bad = ~np.isfinite(parts["loss"]).reshape(n_features, n, -1).all(axis=(0, 2))
    if bad.any():
      raise UserError(f"the loss became NaN at step {step + int(np.argmax(bad))}",
                      "lower --learning_rate or the λ weights")
    history += [{k: np.asarray(v[:, i]).tolist() for k, v in parts.items()} for i in range(n)]
    parts = {k: v[:, -1] for k, v in parts.items()}
    step = done = step + n
    if done % lcfg.log_every == 0 or done == lcfg.steps:
      best = np.argmin(parts["acc"], axis=1)  # per feature, the seed with the lowest L_acc
      f = np.arange(n_features)
      rate = (done - state.step) / max(1e-9, time.time() - t0)
      log(f"  step {done:4d}/{lcfg.steps}  loss {parts['loss'][f, best].mean():.3f} "
          f"(acc {parts['acc'][f, best].mean():.3f}, H {parts['entropy'][f, best].mean():.2f}, "
          f"KL {parts['kl'][f, best].mean():.2f})  top p {parts['top_p'][f, best, 0].mean():.2f}"
          f"{' (mean of %d features)' % n_features if n_features > 1 else ''}  {rate:.1f} steps/s")
    if checkpointer is not None and (done % lcfg.checkpoint_every == 0 or done == lcfg.steps):
      checkpointer.save(TrainState(place.to_host(label, n_features), place.to_host(opt_state, n_features), done),
                        history, {"fingerprint": fingerprint})
  return TrainState(place.to_host(label, n_features), place.to_host(opt_state, n_features), lcfg.steps), history


_reference_logq = jax.jit(lambda logq_FxBxV, target_FxB: reference_logq(logq_FxBxV, target_FxB))


# ---------------------------------------------------------------------------------------------------------------
# Verification: the soft label's top tokens re-scored exactly as hard labels.

def fit_calibration(score_CxB: np.ndarray, target_B: np.ndarray, max_scale: float | None, iters: int = 200
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Per candidate, the (scale, bias) minimizing cross-entropy; returns scale, bias, loss. The scale lies in
  [0, max_scale], or [0, inf) without a cap: never below 0, so that a label the discriminator answers *less* readily
  for the feature's tokens scores below chance instead of being read backwards (a negative scale mirrors its AUC)."""
  cap = float(max_scale) if max_scale else None
  C = score_CxB.shape[0]
  padded = np.zeros((-(-C // 16) * 16, score_CxB.shape[1]), np.float32)  # candidate counts vary: compile once per 16
  padded[:C] = score_CxB
  a, b, final = _fit_calibration(jnp.asarray(padded), jnp.asarray(target_B, jnp.float32), cap, iters)
  return np.asarray(a)[:C], np.asarray(b)[:C], np.asarray(final)[:C]


@functools.partial(jax.jit, static_argnums=(2, 3))
def _fit_calibration(s_CxB, t_B, cap, iters):
  """Adam on (scale, bias) per candidate, the whole loop in one compiled call."""
  def scale(raw):
    return cap * jax.nn.sigmoid(raw) if cap else jax.nn.softplus(raw)

  def loss(ab):
    a = scale(ab[:, 0])
    logit = a[:, None] * s_CxB + ab[:, 1:2]
    return jnp.mean(jnp.logaddexp(0.0, logit) - t_B * logit, axis=-1)

  opt = optax.adam(0.1)

  def step(_, carry):
    ab, st = carry
    u, st = opt.update(jax.grad(lambda x: loss(x).sum())(ab), st)
    return optax.apply_updates(ab, u), st

  ab = jnp.zeros((s_CxB.shape[0], 2), jnp.float32)
  ab, _ = jax.lax.fori_loop(0, iters, step, (ab, opt.init(ab)))
  return scale(ab[:, 0]), ab[:, 1], loss(ab)


def candidates(v_SxNxV: jax.Array, mask_V: np.ndarray, top_k: int) -> list[int]:
  """Union over seeds of each seed's top-k tokens (first slot), in order of probability."""
  p = np.asarray(objective.label_probs(v_SxNxV, jnp.asarray(mask_V)))[:, 0]  # S x V
  return _union_top(-p, top_k)


def _union_top(cost_SxV: np.ndarray, k: int) -> list[int]:
  order = np.argsort(cost_SxV, axis=-1)[:, :k]
  best: dict[int, float] = {}
  for s in range(cost_SxV.shape[0]):
    for t in order[s]:
      best[int(t)] = min(best.get(int(t), np.inf), float(cost_SxV[s, t]))
  return sorted(best, key=lambda t: best[t])


@functools.partial(jax.jit, static_argnums=(0, 1))
def _seed_gradients(cfg, disc, label_S, params, prep, target_B, logq_ref_V, mask_V, lam_kl):
  return jax.vmap(lambda lab: objective.token_gradient(lab, params, cfg, disc, prep, target_B, logq_ref_V, mask_V,
                                                       lam_kl))(label_S)


def gradient_candidates(params, cfg: ModelConfig, disc: disc_lib.DiscriminatorConfig, lcfg: LabelConfig, label_S,
                        prep: disc_lib.Prepared, target_B: np.ndarray, mask_V: np.ndarray, top_k: int) -> list[int]:
  """Per seed, the top-k tokens by first-order gain at the final label (first slot), on the training examples."""
  t = jnp.asarray(target_B, jnp.float32)
  logq_ref = reference_logq(prep.logq_BxV[None], t[None])[0]
  g_SxNxV = _seed_gradients(cfg, disc, label_S, params, prep, t, logq_ref, jnp.asarray(mask_V), lcfg.lam_kl)
  return _union_top(np.asarray(g_SxNxV[:, 0]), top_k)
