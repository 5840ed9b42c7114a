"""The labeling objective: L_acc + λ_ent·H(p) + λ_kl·KL(p ‖ q), as pure functions of the label pytree.

The label pytree is {"v_NxV": logits over the vocabulary per label slot, "scale_raw": (), "bias": ()}; scale and bias
calibrate a discriminator score into the probability that the token belongs to the concept. The scale is bounded
(`max_scale · sigmoid(scale_raw)`): unbounded, it lets a junk soft label separate a small training set.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax.config import ModelConfig

_MASKED = -1e9


def init_label(key: jax.Array, n_slots: int, vocab_size: int) -> dict[str, jax.Array]:
  """The paper's init: v ~ N(0, 1); calibration starts at scale max/2, bias 0."""
  return {"v_NxV": jax.random.normal(key, (n_slots, vocab_size), jnp.float32),
          "scale_raw": jnp.zeros((), jnp.float32), "bias": jnp.zeros((), jnp.float32)}


def label_logprobs(v_NxV: jax.Array, mask_V: jax.Array) -> jax.Array:
  """log p = log_softmax(v) over the allowed vocabulary (excluded tokens: about -1e9, so p = 0 with finite grads)."""
  return jax.nn.log_softmax(jnp.where(mask_V, v_NxV, _MASKED), axis=-1)


def label_probs(v_NxV: jax.Array, mask_V: jax.Array) -> jax.Array:
  return jnp.exp(label_logprobs(v_NxV, mask_V))


def calibrated_logit(score_B: jax.Array, label: dict[str, jax.Array], disc: disc_lib.DiscriminatorConfig):
  if not disc.calibrate:
    return score_B
  return disc.max_scale * jax.nn.sigmoid(label["scale_raw"]) * score_B + label["bias"]


def entropy(logp_NxV: jax.Array) -> jax.Array:
  return -jnp.sum(jnp.exp(logp_NxV) * logp_NxV, axis=-1).mean()


def kl_to_model(logp_NxV: jax.Array, logq_ref_V: jax.Array, mask_V: jax.Array) -> jax.Array:
  """KL(p ‖ q): q is the model's own distribution at the label slot, renormalized over the allowed vocabulary.

  `logq_ref_V` is log q averaged over the positive training examples (`optimization.reference_logq`). Renormalized,
  it makes this the mean of KL(p ‖ q_i) over them less a constant that does not depend on p: the same gradient, but
  the logged value is not that mean.
  """
  logq = jnp.where(mask_V, logq_ref_V, _MASKED)
  logq = logq - jax.scipy.special.logsumexp(jnp.where(mask_V, logq_ref_V, -jnp.inf))
  return jnp.sum(jnp.exp(logp_NxV) * jnp.where(mask_V, logp_NxV - logq, 0.0), axis=-1).mean()


def bce_with_logits(logit_B: jax.Array, target_B: jax.Array) -> jax.Array:
  return jnp.mean(jnp.logaddexp(0.0, logit_B) - target_B * logit_B)


def forced(p_NxV: jax.Array, forcing: str, key: jax.Array, temperature: jax.Array) -> jax.Array:
  """How the label enters the model: soft p, or a hard token forward with gradient to p (closing the soft-hard gap)."""
  if forcing == "none":
    return p_NxV
  if forcing == "straight_through":
    hard = jax.nn.one_hot(jnp.argmax(p_NxV, -1), p_NxV.shape[-1], dtype=p_NxV.dtype)
    return hard + p_NxV - jax.lax.stop_gradient(p_NxV)
  if forcing == "gumbel":
    g = -jnp.log(-jnp.log(jax.random.uniform(key, p_NxV.shape, minval=1e-9, maxval=1.0)))
    return jax.nn.softmax((jnp.log(p_NxV + 1e-20) + g) / temperature, axis=-1)
  raise ValueError(f"unknown forcing {forcing!r}")


def task_loss(p_NxV: jax.Array, label: dict[str, jax.Array], params: dict[str, Any], cfg: ModelConfig,
              disc: disc_lib.DiscriminatorConfig, prep: disc_lib.Prepared, target_B: jax.Array) -> jax.Array:
  """L_acc: cross-entropy of the calibrated discriminator answer against the feature's target."""
  score_B = disc_lib.scores(params, cfg, disc, prep, p_NxV)
  return bce_with_logits(calibrated_logit(score_B, label, disc), target_B)


def loss(label: dict[str, jax.Array], params: dict[str, Any], cfg: ModelConfig, disc: disc_lib.DiscriminatorConfig,
         prep: disc_lib.Prepared, target_B: jax.Array, logq_ref_V: jax.Array, mask_V: jax.Array,
         lam_ent: jax.Array, lam_kl: jax.Array, forcing: str = "none", key: jax.Array | None = None,
         temperature: jax.Array = 1.0) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Total loss and its parts for one label on one batch of prepared examples."""
  logp_NxV = label_logprobs(label["v_NxV"], mask_V)
  p_NxV = jnp.exp(logp_NxV)
  key = jax.random.PRNGKey(0) if key is None else key
  acc = task_loss(forced(p_NxV, forcing, key, temperature), label, params, cfg, disc, prep, target_B)
  ent = entropy(logp_NxV)
  kl = kl_to_model(logp_NxV, logq_ref_V, mask_V)
  total = acc + lam_ent * ent + lam_kl * kl
  return total, {"loss": total, "acc": acc, "entropy": ent, "kl": kl}


def token_gradient(label: dict[str, jax.Array], params: dict[str, Any], cfg: ModelConfig,
                   disc: disc_lib.DiscriminatorConfig, prep: disc_lib.Prepared, target_B: jax.Array,
                   logq_ref_V: jax.Array, mask_V: jax.Array, lam_kl: float) -> jax.Array:
  """First-order gain of moving the label toward each token: d(L_acc + λ_kl·CE(p, q))/dp (lower is better).

  As in HotFlip/GCG, the most negative entries name hard tokens worth re-scoring exactly; they reach tokens the
  soft optimization never put mass on.
  """
  p_NxV = label_probs(label["v_NxV"], mask_V)
  g_NxV = jax.grad(task_loss)(p_NxV, label, params, cfg, disc, prep, target_B)
  return jnp.where(mask_V, g_NxV - lam_kl * logq_ref_V, jnp.inf)
