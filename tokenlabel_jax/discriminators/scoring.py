"""Scores of labels on prepared examples: soft labels with gradients (optimization), hard labels exactly (ranking).

Only the label-dependent part runs here (the slot and the short suffix after it, attending to the cached prefix); the
namer's one-token labels need no pass at all, being linear in the cached next-token distribution.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tokenlabel_jax import model as model_lib
from tokenlabel_jax.config import ModelConfig
from tokenlabel_jax.discriminators.rows import Prepared, take_rows
from tokenlabel_jax.discriminators.templates import DiscriminatorConfig
from tokenlabel_jax.errors import UserError


def scores(params, cfg: ModelConfig, disc: DiscriminatorConfig, prep: Prepared, label_NxV: jax.Array) -> jax.Array:
  """Score per example for a soft label (N slots x vocabulary probabilities); differentiable in `label_NxV`.

  A one-hot `label_NxV` is the hard label; a straight-through label is one-hot forward, soft backward.
  """
  if disc.kind == "namer":
    if label_NxV.shape[0] != 1:
      raise UserError("the namer scores soft labels of one slot", "use --label_slots=1 with the namer")
    return prep.logq_BxV @ label_NxV[0] - prep.baseline_B
  B = prep.prefix_len_B.shape[0]
  N = label_NxV.shape[0]
  slot_BxNxD = jnp.broadcast_to(model_lib.soft_embed(params, label_NxV), (B, N, cfg.dim))
  x_BxSxD = jnp.concatenate([slot_BxNxD, model_lib.embed(params, prep.suffix_ids_BxS)], axis=1)
  S = x_BxSxD.shape[1]
  positions_BxS = prep.prefix_len_B[:, None] + jnp.arange(S)[None]
  valid_BxS = jnp.concatenate([jnp.ones((B, N), bool), prep.suffix_valid_BxS], axis=1)
  h_BxSxD, _, _ = model_lib.forward(params, cfg, x_BxSxD, positions_BxS, valid_BxS, (prep.shared, prep.cache))
  h_BxRxD = jnp.take_along_axis(h_BxSxD, prep.readout_pos_BxR[..., None], axis=1)
  if disc.kind == "judge":
    # The answer weights (+1, -1) at one position sum to zero, so log-softmax's normalizer cancels: the score is a
    # difference of two logits, and the vocabulary-wide head (and its backward) is never computed.
    return jnp.sum(prep.readout_w_BxR * model_lib.token_logits(params, h_BxRxD, prep.readout_tok_BxR), axis=-1) \
        - prep.baseline_B
  logp_BxRxV = jax.nn.log_softmax(model_lib.logits(params, h_BxRxD), axis=-1)
  tok_BxR = jnp.take_along_axis(logp_BxRxV, prep.readout_tok_BxR[..., None], axis=-1)[..., 0]
  return jnp.sum(prep.readout_w_BxR * tok_BxR, axis=-1) - prep.baseline_B


@jax.jit(static_argnums=(1, 2))
def _hard_scores_chunk(params, cfg, disc, prep, label_ids_CxN):
  V = prep.logq_BxV.shape[-1]
  if disc.kind == "namer" and label_ids_CxN.shape[1] > 1:
    return jax.vmap(lambda ids: _namer_multi(params, cfg, prep, ids))(label_ids_CxN)
  return jax.vmap(lambda ids: scores(params, cfg, disc, prep, jax.nn.one_hot(ids, V)))(label_ids_CxN)


def _namer_multi(params, cfg, prep: Prepared, ids_N):
  """log P(t_1..t_N | prefix): the first token from the cached distribution, the rest teacher-forced."""
  B = prep.prefix_len_B.shape[0]
  first = prep.logq_BxV[:, ids_N[0]]
  x_BxSxD = jnp.broadcast_to(model_lib.embed(params, ids_N[:-1]), (B, ids_N.shape[0] - 1, cfg.dim))
  positions = prep.prefix_len_B[:, None] + jnp.arange(ids_N.shape[0] - 1)[None]
  h, _, _ = model_lib.forward(params, cfg, x_BxSxD, positions, None, (prep.shared, prep.cache))
  logp = jax.nn.log_softmax(model_lib.logits(params, h), axis=-1)
  rest = jnp.take_along_axis(logp, jnp.broadcast_to(ids_N[1:], (B, ids_N.shape[0] - 1))[..., None], -1)[..., 0]
  return first + rest.sum(-1) - prep.baseline_B


def hard_scores(params, cfg: ModelConfig, disc: DiscriminatorConfig, prep: Prepared, label_ids_CxN: jax.Array,
                chunk: int = 32) -> jax.Array:
  """Exact scores of C hard labels (token ids, N slots each) on every prepared example: C x B."""
  B = prep.prefix_len_B.shape[0]
  if disc.kind == "namer" and label_ids_CxN.shape[1] == 1:
    return prep.logq_BxV[:, label_ids_CxN[:, 0]].T - prep.baseline_B[None]
  require_cache(prep)
  # Bound the work per call: C labels x `chunk` examples at a time.
  rows = []
  for i in range(0, B, chunk):
    sub = take_rows(prep, jnp.arange(i, min(B, i + chunk)))
    rows.append(_hard_scores_chunk(params, cfg, disc, sub, label_ids_CxN))
  return jnp.concatenate(rows, axis=1)


def require_cache(prep: Prepared) -> None:
  """Labels of several tokens (or any label, for the model-running formulations) attend to each example's own prefix:
  examples prepared with `keep_cache=False` cannot score them, and must not silently attend to the head alone."""
  if prep.cache.valid_BxT.shape[-1] == 0:
    raise ValueError("these examples were prepared without their keys/values (keep_cache=False): only one-token "
                     "namer labels can be scored on them")
