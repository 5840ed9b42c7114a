"""A TopK sparse autoencoder (Gao et al. 2024, "Scaling and evaluating sparse autoencoders"), trained with optax.

  z = ReLU(TopK(W_enc (x - b_pre) + b_enc)),   x̂ = W_dec z + b_pre,   rows of W_dec kept at unit norm.

TopK fixes L0 at (at most) k without an L1 penalty and its shrinkage. Latents that have not fired for
`aux_dead_tokens` training tokens are "dead"; the AuxK loss asks the k_aux largest dead pre-activations to
reconstruct the main reconstruction's error, which gives them gradient again. Inputs are scaled once by a scalar so
that E||x||² = D (learning rates then transfer across layers and models); FVU does not depend on it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tokenlabel_jax import model as model_lib
from tokenlabel_jax.config import ModelConfig

Params = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class SAEConfig:
  n_latents: int = 4608  # 8 x 576
  k: int = 32
  k_aux: int = 256
  aux_coef: float = 1 / 32
  aux_dead_tokens: int = 200_000  # no firing for this many training tokens: dead, for AuxK
  learning_rate: float = 4e-4
  batch_size: int = 1024  # tokens per step
  seed: int = 0


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
  params: Params
  opt_state: Any
  since_fired_M: jax.Array  # training tokens since each latent last fired (int32)


def init_params(key: jax.Array, D: int, M: int, b_pre_D: np.ndarray) -> Params:
  """Unit-norm random decoder rows, the encoder initialized to their transpose (Gao et al. §A), b_pre the data mean."""
  w_MxD = jax.random.normal(key, (M, D), jnp.float32)
  w_MxD = w_MxD / jnp.linalg.norm(w_MxD, axis=-1, keepdims=True)
  return {"b_pre_D": jnp.asarray(b_pre_D, jnp.float32), "w_enc_DxM": w_MxD.T, "b_enc_M": jnp.zeros((M,), jnp.float32),
          "w_dec_MxD": w_MxD}


def pre_activations(p: Params, x_BxD: jax.Array) -> jax.Array:
  return (x_BxD - p["b_pre_D"]) @ p["w_enc_DxM"] + p["b_enc_M"]


def encode(p: Params, x_BxD: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
  """The k largest pre-activations, ReLU'd: values B x k (>= 0) and their latent ids B x k."""
  vals_BxK, idx_BxK = jax.lax.top_k(pre_activations(p, x_BxD), k)
  return jax.nn.relu(vals_BxK), idx_BxK


def decode(p: Params, vals_BxK: jax.Array, idx_BxK: jax.Array) -> jax.Array:
  """Sum of k decoder rows: B x k x D gathered, never the dense B x M code."""
  return jnp.einsum("bk,bkd->bd", vals_BxK, p["w_dec_MxD"][idx_BxK]) + p["b_pre_D"]


def dense_codes(vals_BxK: jax.Array, idx_BxK: jax.Array, M: int) -> jax.Array:
  B = vals_BxK.shape[0]
  return jnp.zeros((B, M), vals_BxK.dtype).at[jnp.arange(B)[:, None], idx_BxK].add(vals_BxK)


def loss_fn(p: Params, x_BxD: jax.Array, dead_M: jax.Array, cfg: SAEConfig) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Normalized MSE (the batch's FVU) + aux_coef x AuxK (dead latents reconstructing the error; 0 without any)."""
  pre_BxM = pre_activations(p, x_BxD)
  vals_BxK, idx_BxK = jax.lax.top_k(pre_BxM, cfg.k)
  vals_BxK = jax.nn.relu(vals_BxK)
  err_BxD = x_BxD - decode(p, vals_BxK, idx_BxK)
  var = jnp.sum(jnp.square(x_BxD - x_BxD.mean(0)))
  mse = jnp.sum(jnp.square(err_BxD)) / var
  k_aux = min(cfg.k_aux, pre_BxM.shape[1])
  dead_pre_BxM = jnp.where(dead_M, pre_BxM, -jnp.inf)
  kth_B = jax.lax.top_k(dead_pre_BxM, k_aux)[0][:, -1:]
  z_aux_BxM = jnp.where(dead_M & (dead_pre_BxM >= kth_B), jax.nn.relu(pre_BxM), 0.0)
  aux = jnp.sum(jnp.square(jax.lax.stop_gradient(err_BxD) - z_aux_BxM @ p["w_dec_MxD"])) / var
  aux = jnp.where(dead_M.any(), aux, 0.0)
  fired_M = jnp.zeros(pre_BxM.shape[1], bool).at[idx_BxK.reshape(-1)].max((vals_BxK > 0).reshape(-1))
  return mse + cfg.aux_coef * aux, {"fvu": mse, "aux": aux, "fired_M": fired_M,
                                    "l0": jnp.mean(jnp.sum(vals_BxK > 0, -1))}


def make_optimizer(cfg: SAEConfig) -> optax.GradientTransformation:
  return optax.adam(cfg.learning_rate, eps=6.25e-10)  # Gao et al.'s epsilon


def init_state(cfg: SAEConfig, D: int, b_pre_D: np.ndarray) -> TrainState:
  params = init_params(jax.random.PRNGKey(cfg.seed), D, cfg.n_latents, b_pre_D)
  return TrainState(params, make_optimizer(cfg).init(params), jnp.zeros((cfg.n_latents,), jnp.int32))


@functools.partial(jax.jit, static_argnames=("cfg",), donate_argnums=(0,))
def train_step(state: TrainState, x_BxD: jax.Array, cfg: SAEConfig) -> tuple[TrainState, dict[str, jax.Array]]:
  """One Adam step; the decoder-norm-parallel part of its gradient is removed and its rows renormalized after."""
  dead_M = state.since_fired_M >= cfg.aux_dead_tokens
  (loss, aux), g = jax.value_and_grad(loss_fn, has_aux=True)(state.params, x_BxD, dead_M, cfg)
  w = state.params["w_dec_MxD"]
  g = {**g, "w_dec_MxD": g["w_dec_MxD"] - jnp.sum(g["w_dec_MxD"] * w, -1, keepdims=True) * w}
  updates, opt_state = make_optimizer(cfg).update(g, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  params["w_dec_MxD"] = params["w_dec_MxD"] / jnp.linalg.norm(params["w_dec_MxD"], axis=-1, keepdims=True)
  since = jnp.where(aux.pop("fired_M"), 0, state.since_fired_M + x_BxD.shape[0])
  return TrainState(params, opt_state, since), {"loss": loss, **aux, "dead": jnp.mean(dead_M)}


def train(state: TrainState, cfg: SAEConfig, x_NxD: np.ndarray, scale: float, steps: int, start_step: int = 0,
          save: Callable[[TrainState, int], None] | None = None, checkpoint_every: int = 200,
          log: Callable[[str], None] | None = None, log_every: int = 50) -> TrainState:
  """Steps `start_step`..`steps` over seeded per-epoch permutations of the rows of x (a float16 memory map is fine)."""
  N = x_NxD.shape[0]
  per_epoch = max(1, N // cfg.batch_size)
  perm, perm_epoch = None, -1
  for step in range(start_step, steps):
    epoch, i = divmod(step, per_epoch)
    if epoch != perm_epoch:
      perm, perm_epoch = np.random.default_rng([cfg.seed, epoch]).permutation(N), epoch
    rows = np.sort(perm[i * cfg.batch_size:(i + 1) * cfg.batch_size])
    x = jnp.asarray(np.asarray(x_NxD[rows], np.float32) * scale)
    state, m = train_step(state, x, cfg)
    if log and (step + 1) % log_every == 0:
      log(f"sae: step {step + 1}/{steps}  fvu {float(m['fvu']):.3f}  aux {float(m['aux']):.3f}  "
          f"l0 {float(m['l0']):.1f}  dead(aux) {float(m['dead']):.3f}")
    if save and ((step + 1) % checkpoint_every == 0 or step + 1 == steps):
      save(state, step + 1)
  return state


# ------------------------------------------------------------------------------------------------------------------
# Metrics on held-out tokens.


@functools.partial(jax.jit, static_argnames=("k",))
def _eval_batch(p: Params, x_BxD: jax.Array, k: int):
  vals, idx = encode(p, x_BxD, k)
  err_B = jnp.sum(jnp.square(x_BxD - decode(p, vals, idx)), axis=-1)
  fired = jnp.zeros(p["b_enc_M"].shape[0], jnp.int32).at[idx.reshape(-1)].add((vals > 0).reshape(-1))
  return err_B, jnp.sum(vals > 0), fired


def evaluate(p: Params, x_NxD: np.ndarray, scale: float, k: int, batch_size: int = 1024,
             outsized: float = 100.0) -> dict[str, Any]:
  """FVU = Σ||x - x̂||² / Σ||x - mean x||², L0 (mean active latents per token), and per-latent firing counts.

  A handful of tokens (long runs of digits, in this corpus) reach residual norms thousands of times the typical one;
  over 0.1% of held-out tokens they can carry 90% of the variance, and FVU then measures them alone. So FVU is also
  given over the other tokens ("fvu_typical": squared deviation from the mean at most `outsized` x the median), with
  the share of tokens left out.
  """
  N = x_NxD.shape[0]
  x_mean = np.zeros(x_NxD.shape[1])
  for s in range(0, N, batch_size):
    x_mean += np.asarray(x_NxD[s:s + batch_size], np.float64).sum(0) * scale
  x_mean /= N
  err_N, dev_N = np.zeros(N), np.zeros(N)
  active = 0.0
  fired = np.zeros(p["b_enc_M"].shape[0], np.int64)
  for s in range(0, N, batch_size):
    x = np.asarray(x_NxD[s:s + batch_size], np.float32) * scale
    e, a, f = _eval_batch(p, jnp.asarray(x), k)
    err_N[s:s + len(x)] = np.asarray(e)
    active += float(a)
    fired += np.asarray(f)
    dev_N[s:s + len(x)] = np.sum(np.square(x - x_mean), axis=-1)
  typical = dev_N <= outsized * np.median(dev_N)
  return {"fvu": float(err_N.sum() / dev_N.sum()), "fvu_typical": float(err_N[typical].sum() / dev_N[typical].sum()),
          "outsized_fraction": float(1 - typical.mean()), "l0": active / N, "fired_M": fired, "tokens": N}


@functools.partial(jax.jit, static_argnames=("cfg", "layer", "k"))
def _losses(params, cfg: ModelConfig, sae: Params, tokens_BxS: jax.Array, layer: int, k: int, scale: float):
  """Next-token loss with the residual entering `layer` clean, replaced by the SAE's reconstruction, or zeroed.

  Position 0 (an attention sink with an outsized norm, left out of SAE training) stays clean in all three; the loss
  counts the predictions of positions 1..S-2, the ones every variant changes.
  """
  B, S = tokens_BxS.shape
  pos = jnp.broadcast_to(jnp.arange(S), (B, S))
  _, _, resid = model_lib.forward(params, cfg, model_lib.embed(params, tokens_BxS), pos, return_layers=True,
                                  layers=(0, layer + 1))
  x_BxSxD = resid[layer]
  vals, idx = encode(sae, x_BxSxD.reshape(B * S, -1).astype(jnp.float32) * scale, k)
  recon = (decode(sae, vals, idx) / scale).reshape(x_BxSxD.shape).astype(x_BxSxD.dtype)
  first = (jnp.arange(S) == 0)[None, :, None]
  out = []
  for x in (x_BxSxD, jnp.where(first, x_BxSxD, recon), jnp.where(first, x_BxSxD, 0)):
    h, _, _ = model_lib.forward(params, cfg, x, pos, layers=(layer, cfg.n_layers))
    logp = jax.nn.log_softmax(model_lib.logits(params, h[:, 1:-1]), -1)
    out.append(-jnp.mean(jnp.take_along_axis(logp, tokens_BxS[:, 2:, None], -1)))
  return jnp.stack(out)


def loss_recovered(params, cfg: ModelConfig, sae: Params, tokens_NxS: np.ndarray, layer: int, k: int, scale: float,
                   batch_size: int = 8) -> dict[str, float]:
  """(L_zero - L_sae) / (L_zero - L_clean) over the given contexts: 1 when the reconstruction loses nothing."""
  total = np.zeros(3)
  for s in range(0, len(tokens_NxS), batch_size):
    total += np.asarray(_losses(params, cfg, sae, jnp.asarray(tokens_NxS[s:s + batch_size]), layer, k, scale)) * len(
        tokens_NxS[s:s + batch_size])
  clean, recon, zero = total / len(tokens_NxS)
  return {"loss_clean": float(clean), "loss_sae": float(recon), "loss_zero": float(zero),
          "loss_recovered": float((zero - recon) / (zero - clean))}


# ------------------------------------------------------------------------------------------------------------------
# Checkpoints.


class Checkpointer:
  """Orbax checkpoints of the train state, with a JSON fingerprint: a run with other settings never resumes it."""

  def __init__(self, directory: str, fingerprint: dict[str, Any]):
    import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
    self._ocp = ocp
    self.fingerprint = json.loads(json.dumps(fingerprint))
    self.manager = ocp.CheckpointManager(os.path.abspath(directory),
                                         options=ocp.CheckpointManagerOptions(max_to_keep=2))

  def save(self, state: TrainState, step: int) -> None:
    ocp = self._ocp
    self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                    meta=ocp.args.JsonSave({"fingerprint": self.fingerprint})),
                      force=True)
    self.manager.wait_until_finished()

  def restore(self, like: TrainState) -> tuple[TrainState, int] | None:
    ocp = self._ocp
    step = self.manager.latest_step()
    if step is None:
      return None
    meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    if meta.get("fingerprint") != self.fingerprint:
      return None
    out = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(like)))["state"]
    return jax.tree.map(jnp.asarray, out), step
