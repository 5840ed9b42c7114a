"""Scores of labels on prepared examples: soft labels with gradients (optimization), hard labels exactly (ranking).

Where a label enters the model: `scores` puts a soft label's embedding in the slot, `hard_scores` a token label's,
`namer_scores` the namer's one- and two-token candidates (the second token run after the first). Only the
label-dependent part runs here (the slot and the short suffix after it, attending to the cached prefix); the namer's
one-token labels need no pass at all, being linear in the cached next-token distribution.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tokenlabel_jax import model as model_lib
from tokenlabel_jax.config import ModelConfig
from tokenlabel_jax.discriminators.rows import Prepared, pad_cache, take_rows
from tokenlabel_jax.discriminators.templates import PRESETS, DiscriminatorConfig
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


_NAMER = PRESETS["namer"]  # hard_scores reads only its kind here: the template is in the prepared prompts


def namer_scores(params, cfg: ModelConfig, prep: Prepared, ids: Sequence[tuple[int, ...]]) -> np.ndarray:
  """Exact namer scores log P(label | prompt) of labels of any length on every prepared example: C x B.

  One model step per distinct first token of the two-token labels, whatever their number of second tokens; longer
  labels (an explainer's proposals) are teacher-forced, each group of one length in one call. On one or two prompts
  (the chat question of coverage.ask_scores) the two-token labels are teacher-forced too: one batched pass reads the
  weights once, where a step per first token would read them once per token.
  """
  logq = np.asarray(prep.logq_BxV) - np.asarray(prep.baseline_B)[:, None]
  out = np.stack([logq[:, c[0]] for c in ids]) if ids else np.zeros((0, logq.shape[0]), np.float32)
  few = logq.shape[0] <= 2
  multi = [] if few else [i for i, c in enumerate(ids) if len(c) == 2]
  for n in sorted({len(c) for c in ids if len(c) > (1 if few else 2)}):
    longer = [i for i, c in enumerate(ids) if len(c) == n]
    # Few compiled shapes: on one or two prompts (a chat question per feature) the row counts vary from feature to
    # feature, and a coarser step lets the features of a run share compilations.
    padded = [ids[i] for i in longer] + [ids[longer[-1]]] * (-len(longer) % (16 if few else 4))
    got = np.asarray(hard_scores(params, cfg, _NAMER, _bucketed(prep) if few else prep,
                                 jnp.asarray(padded, jnp.int32)))
    out[longer] = got[:len(longer)]
  if multi:
    require_cache(prep)
    firsts = sorted({ids[i][0] for i in multi})
    seconds = {f: sorted({ids[i][1] for i in multi if ids[i][0] == f}) for f in firsts}
    K, J = -(-len(firsts) // 8) * 8, -(-max(len(v) for v in seconds.values()) // 4) * 4  # few compiled shapes
    second_KxJ = np.asarray([v + [v[0]] * (J - len(v)) for v in seconds.values()] + [[0] * J] * (K - len(firsts)),
                            np.int32)
    first_K = jnp.asarray(firsts + [0] * (K - len(firsts)), jnp.int32)
    cont = np.asarray(_continuations(params, cfg, _bucketed(prep), first_K, jnp.asarray(second_KxJ)))
    for i in multi:
      f, t2 = ids[i]
      k = firsts.index(f)
      out[i] = out[i] + cont[k, seconds[f].index(t2)]
  return out


def next_token_logp(params, cfg: ModelConfig, prep: Prepared, first_K: jax.Array) -> jax.Array:
  """log P(next token | prompt, first) for each of K first tokens put in the label slot, on every example: K x B x V.
  What a two-token label's second token is chosen from (selection's extensions)."""
  return _next_token_logp(params, cfg, _bucketed(prep), first_K)


@jax.jit(static_argnums=1)
def _next_token_logp(params, cfg, prep: Prepared, first_K):
  """log P(next token | prompt, first) for each first token on every example: K x B x V."""
  return jax.lax.map(lambda t: _after(params, cfg, prep, t), first_K)


@jax.jit(static_argnums=1)
def _continuations(params, cfg, prep: Prepared, first_K, second_KxJ):
  """log P(second | prompt, first) for J second tokens per first token, on every example: K x J x B."""
  return jax.lax.map(lambda a: _after(params, cfg, prep, a[0])[:, a[1]].T, (first_K, second_KxJ))


def _after(params, cfg, prep: Prepared, t):
  """log P(next token | prompt, t) on every example (t run from the cached prefix at the label slot): B x V."""
  B = prep.prefix_len_B.shape[0]
  x = jnp.broadcast_to(model_lib.embed(params, t[None]), (B, 1, cfg.dim))
  h, _, _ = model_lib.forward(params, cfg, x, prep.prefix_len_B[:, None], None, (prep.shared, prep.cache))
  return jax.nn.log_softmax(model_lib.logits(params, h[:, 0]), axis=-1)


def _bucketed(prep: Prepared) -> Prepared:
  """The cache padded to a width bucket (padding is invalid, so inert): features of nearby prompt lengths share one
  compiled model step instead of compiling one each."""
  T = prep.cache.valid_BxT.shape[1]
  return dataclasses.replace(prep, cache=pad_cache(prep.cache, -(-max(T, 1) // 16) * 16))


def require_cache(prep: Prepared) -> None:
  """Labels of several tokens (or any label, for the model-running formulations) attend to each example's own prefix:
  examples prepared with `keep_cache=False` cannot score them, and must not silently attend to the head alone."""
  if prep.cache.valid_BxT.shape[-1] == 0:
    raise ValueError("these examples were prepared without their keys/values (keep_cache=False): only one-token "
                     "namer labels can be scored on them")
