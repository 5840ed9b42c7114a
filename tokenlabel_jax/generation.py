"""Text generation with the one forward: greedy or sampled decoding over an explicit, preallocated KV cache.

Prompts of different lengths are left-padded into one batch (padding is invalid in attention and positions count
only real tokens), run once (prefill), and then every row decodes one token per step. The cache has a fixed width
(prompt + max_new), so the whole decode loop is one jitted `lax.while_loop`: each step runs the new token through
`model.forward` against the cache, writes its keys/values at the step's column and marks it valid. A row stops at
any of `stop_ids` (end of turn, newline); the loop stops when every row has.

Shape suffixes as in model.py; N new tokens at most, P prompt width.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tokenlabel_jax import model as model_lib
from tokenlabel_jax.config import ModelConfig


def _bucket(n: int) -> int:
  """Widths rounded up (to 64, then to powers of two past 512): a few compiled shapes for any prompt lengths."""
  return -(-n // 64) * 64 if n <= 512 else 1 << (n - 1).bit_length()


@functools.partial(jax.jit, static_argnames=("cfg", "max_new", "repeat"))
def _generate(params, cfg: ModelConfig, ids_BxP: jax.Array, valid_BxP: jax.Array, stop_S: jax.Array,
              temperature_R: jax.Array, key: jax.Array, max_new: int, repeat: int = 1):
  """`repeat` rows decode from each prompt (samples), sharing its one prefill: B x repeat rows, prompt-major; row r
  of each prompt at temperature_R[r] (0: greedy)."""
  temperature_B = jnp.tile(temperature_R, ids_BxP.shape[0])
  positions_BxP = jnp.maximum(jnp.cumsum(valid_BxP, axis=1) - 1, 0)
  h, cache, _ = model_lib.forward(params, cfg, model_lib.embed(params, ids_BxP), positions_BxP, valid_BxP)
  last_logits_BxV = model_lib.logits(params, h[:, -1])  # left padding: every row's last token is at P - 1
  if repeat > 1:
    rep = lambda x, axis: jnp.repeat(x, repeat, axis=axis)
    cache = model_lib.KVCache(rep(cache.k_LxBxTxKxE, 1), rep(cache.v_LxBxTxKxE, 1), rep(cache.valid_BxT, 0))
    last_logits_BxV, valid_BxP = rep(last_logits_BxV, 0), rep(valid_BxP, 0)
  B, P = valid_BxP.shape
  pad = lambda x, axis: jnp.concatenate([x, jnp.zeros(x.shape[:axis] + (max_new,) + x.shape[axis + 1:], x.dtype)],
                                        axis=axis)
  cache = model_lib.KVCache(pad(cache.k_LxBxTxKxE, 2), pad(cache.v_LxBxTxKxE, 2), pad(cache.valid_BxT, 1))
  next_pos_B = jnp.sum(valid_BxP, axis=1)

  def pick(logits_BxV, key):
    greedy = jnp.argmax(logits_BxV, axis=-1)
    sampled = jax.random.categorical(key, logits_BxV / jnp.maximum(temperature_B, 1e-6)[:, None], axis=-1)
    return jnp.where(temperature_B > 0, sampled, greedy).astype(jnp.int32)

  def body(state):
    step, cache, logits_BxV, out_BxN, done_B, key = state
    key, sub = jax.random.split(key)
    tok_B = pick(logits_BxV, sub)
    tok_B = jnp.where(done_B, 0, tok_B)
    out_BxN = out_BxN.at[:, step].set(jnp.where(done_B, -1, tok_B))
    done_B = done_B | jnp.isin(tok_B, stop_S)
    # The new token attends to the cache (its own column not yet valid) and to itself.
    x = model_lib.embed(params, tok_B[:, None])
    h, new, _ = model_lib.forward(params, cfg, x, (next_pos_B + step)[:, None], None, cache)
    col = P + step
    k = jax.lax.dynamic_update_slice_in_dim(cache.k_LxBxTxKxE, new.k_LxBxTxKxE[:, :, -1:], col, axis=2)
    v = jax.lax.dynamic_update_slice_in_dim(cache.v_LxBxTxKxE, new.v_LxBxTxKxE[:, :, -1:], col, axis=2)
    valid = cache.valid_BxT.at[:, col].set(True)
    return step + 1, model_lib.KVCache(k, v, valid), model_lib.logits(params, h[:, 0]), out_BxN, done_B, key

  def cond(state):
    step, _, _, _, done_B, _ = state
    return (step < max_new) & ~jnp.all(done_B)

  out = -jnp.ones((B, max_new), jnp.int32)
  state = (jnp.int32(0), cache, last_logits_BxV, out, jnp.zeros(B, bool), key)
  return jax.lax.while_loop(cond, body, state)[3]


def generate(params, cfg: ModelConfig, prompts: Sequence[Sequence[int]], max_new: int = 16,
             stop_ids: Sequence[int] = (), temperature: float | Sequence[float] = 0.0, seed: int = 0,
             batch: int = 8) -> list[list[int]]:
  """New token ids for each prompt (the stop token included when one was reached), `batch` prompts at a time.

  temperature 0 is greedy decoding; above 0, sampling from softmax(logits / temperature) with `seed`. A sequence of
  temperatures gives that many answers per prompt (prompt-major), each at its own temperature, decoded from one
  shared prefill of the prompt.
  """
  temps = np.atleast_1d(np.asarray(temperature, np.float32))
  samples = len(temps)
  out: list[list[int]] = []
  stop = jnp.asarray(sorted(set(stop_ids)) or [-1], jnp.int32)
  key = jax.random.PRNGKey(seed)
  for start in range(0, len(prompts), batch):
    group = [list(p) for p in prompts[start:start + batch]]
    if any(not p for p in group):
      raise ValueError("every prompt needs at least one token")
    P = _bucket(max(len(p) for p in group))
    if P + max_new > cfg.max_seq_len:
      raise ValueError(f"a prompt of {max(len(p) for p in group)} tokens and {max_new} new ones exceed the model's "
                       f"context ({cfg.max_seq_len})")
    rows = group + [group[-1]] * (batch - len(group))  # one compiled batch size
    ids = np.zeros((batch, P), np.int32)
    valid = np.zeros((batch, P), bool)
    for r, p in enumerate(rows):
      ids[r, P - len(p):], valid[r, P - len(p):] = p, True
    key, sub = jax.random.split(key)
    new = np.asarray(_generate(params, cfg, jnp.asarray(ids), jnp.asarray(valid), stop, jnp.asarray(temps), sub,
                               max_new, samples))
    out += [[int(t) for t in row if t >= 0] for row in new[:len(group) * samples]]
  return out
