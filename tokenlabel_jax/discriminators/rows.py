"""The cached rows of prepared examples: the `Prepared` container and the row operations on it.

Gathering each example's row out of the prefix chunks, padding and stacking several features into one batch, and
taking minibatches all move rows that were computed once; none of them runs the model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tokenlabel_jax import model as model_lib


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Prepared:
  """Label-independent tensors for N examples (padded): computed once, reused every step.

  The prefix cache is split in two: `shared` holds the prompt head that every example has in common (few-shot lines,
  chat header: one row, stored once), `cache` each example's own remainder. Attending to both in order is the same
  as attending to the whole prefix.
  """

  shared: model_lib.KVCache  # keys/values of the common head, 1 row
  cache: model_lib.KVCache  # each example's own prefix keys/values after the head, B rows
  prefix_len_B: jax.Array  # head + own prefix: the label slot's position
  logq_BxV: jax.Array  # log next-token distribution at the label slot
  suffix_ids_BxS: jax.Array
  suffix_valid_BxS: jax.Array
  readout_pos_BxR: jax.Array  # index (within slots + suffix) whose output predicts readout_tok
  readout_tok_BxR: jax.Array
  readout_w_BxR: jax.Array
  baseline_B: jax.Array  # subtracted from every score (likelihood: the neutral label's score)


def gather_rows(where_B: Sequence[tuple[int, int]], chunks: Sequence[tuple[model_lib.KVCache, jax.Array]], T: int
                ) -> tuple[model_lib.KVCache, jax.Array]:
  """Each example's (chunk, row) of the computed prompts as one cache of width T (a repeated prompt's row is shared).

  On the CPU backend the arrays already live in host memory: numpy copies each row once into the result, compiling
  nothing (XLA takes ~0.2 s to compile each gather shape) and building no concatenated intermediate. On accelerators
  the gather stays on the device.
  """
  first = chunks[0][0]
  if all(d.platform == "cpu" for d in first.k_LxBxTxKxE.devices()):
    L, _, _, K, E = first.k_LxBxTxKxE.shape
    B = len(where_B)
    k = np.zeros((L, B, T, K, E), first.k_LxBxTxKxE.dtype)
    v = np.zeros_like(k)
    valid = np.zeros((B, T), bool)
    logq = np.empty((B, chunks[0][1].shape[-1]), chunks[0][1].dtype)
    for c, (cache, lq) in enumerate(chunks):
      out = [b for b, (cc, _) in enumerate(where_B) if cc == c]
      if not out:
        continue
      src = [where_B[b][1] for b in out]
      w = min(T, cache.valid_BxT.shape[1])  # past an example's own length everything is padding
      k[:, out, :w] = np.asarray(cache.k_LxBxTxKxE)[:, src, :w]
      v[:, out, :w] = np.asarray(cache.v_LxBxTxKxE)[:, src, :w]
      valid[out, :w] = np.asarray(cache.valid_BxT)[src, :w]
      logq[out] = np.asarray(lq)[src]
    return model_lib.KVCache(*jax.device_put((k, v, valid))), jax.device_put(logq)
  width = max(c.valid_BxT.shape[1] for c, _ in chunks)
  rows = chunks[0][1].shape[0]
  index = jnp.asarray([c * rows + r for c, r in where_B], jnp.int32)
  cat = lambda xs, axis: jnp.take(jnp.concatenate(xs, axis), index, axis=axis)
  cache = model_lib.KVCache(
      cat([_pad_axis(c.k_LxBxTxKxE, 2, width) for c, _ in chunks], 1)[:, :, :T],
      cat([_pad_axis(c.v_LxBxTxKxE, 2, width) for c, _ in chunks], 1)[:, :, :T],
      cat([_pad_axis(c.valid_BxT, 1, width, False) for c, _ in chunks], 0)[:, :T])
  return cache, cat([lq for _, lq in chunks], 0)


def gather_logq(where_B: Sequence[tuple[int, int]], chunks: Sequence[tuple[Any, Any]]) -> jax.Array:
  """`gather_rows` for examples kept without keys/values: each one's log q row only (a repeated prompt's row is
  copied, not recomputed), one copy on the host from the remembered rows and the passes' host arrays, one to the
  device."""
  host = [lq if isinstance(lq, list) else np.asarray(lq) for _, lq in chunks]
  return jax.device_put(np.stack([host[c][r] for c, r in where_B]))  # a plain copy (jnp.asarray: 3x slower)


def _pad_axis(x: jax.Array, axis: int, size: int, fill=0) -> jax.Array:
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, size - x.shape[axis])
  return jnp.pad(x, widths, constant_values=fill)


def stack(preps: Sequence[Prepared]) -> Prepared:
  """Several features' prepared examples -> one Prepared with a leading feature axis, padded to common shapes.

  Padding is inert: padded prefix keys are invalid, padded suffix tokens are invalid, padded readouts weigh 0.
  """
  if len({p.prefix_len_B.shape[0] for p in preps}) != 1:
    raise ValueError("features stacked together need the same number of examples")
  H = max(p.shared.length for p in preps)
  T = max(p.cache.valid_BxT.shape[1] for p in preps)
  S = max(p.suffix_ids_BxS.shape[1] for p in preps)
  R = max(p.readout_pos_BxR.shape[1] for p in preps)
  padded = [Prepared(
      shared=pad_cache(p.shared, H), cache=pad_cache(p.cache, T),
      prefix_len_B=p.prefix_len_B, logq_BxV=p.logq_BxV,
      suffix_ids_BxS=_pad_axis(p.suffix_ids_BxS, 1, S), suffix_valid_BxS=_pad_axis(p.suffix_valid_BxS, 1, S, False),
      readout_pos_BxR=_pad_axis(p.readout_pos_BxR, 1, R), readout_tok_BxR=_pad_axis(p.readout_tok_BxR, 1, R),
      readout_w_BxR=_pad_axis(p.readout_w_BxR, 1, R, 0.0), baseline_B=p.baseline_B) for p in preps]
  return jax.tree.map(lambda *xs: jnp.stack(xs), *padded)


def pad_cache(c: model_lib.KVCache, T: int) -> model_lib.KVCache:
  """The cache widened to T positions; the added ones are invalid, so attention ignores them."""
  return model_lib.KVCache(_pad_axis(c.k_LxBxTxKxE, 2, T), _pad_axis(c.v_LxBxTxKxE, 2, T),
                           _pad_axis(c.valid_BxT, 1, T, False))


def empty_cache(cache: model_lib.KVCache) -> model_lib.KVCache:
  """The same rows with no positions: for examples whose scores never read their cache."""
  return model_lib.KVCache(cache.k_LxBxTxKxE[:, :, :0], cache.v_LxBxTxKxE[:, :, :0], cache.valid_BxT[:, :0])


def no_positions(shared: model_lib.KVCache, B: int) -> model_lib.KVCache:
  """B rows with no positions in the layout of `shared`: `empty_cache` for examples that never had their own
  keys/values."""
  L, _, _, K, E = shared.k_LxBxTxKxE.shape
  zeros = jnp.zeros((L, B, 0, K, E), shared.k_LxBxTxKxE.dtype)
  return model_lib.KVCache(zeros, zeros, jnp.zeros((B, 0), bool))


def take_rows(prep: Prepared, rows: jax.Array) -> Prepared:
  """A minibatch of prepared examples (inside jit); the shared head stays as it is."""
  def take(x):
    return jnp.take(x, rows, axis=1 if x.ndim == 5 else 0)
  return dataclasses.replace(jax.tree.map(take, dataclasses.replace(prep, shared=None)), shared=prep.shared)
