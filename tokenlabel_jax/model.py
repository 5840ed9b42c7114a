"""The Llama forward pass as a pure function of a parameter pytree (Qwen2 too: the same block with q/k/v biases).

Parameters are a plain dict of arrays (inspectable, shardable, checkpointable). Layers are stacked along a leading
axis and run with `lax.scan`, so a 30- or 80-layer model compiles as one layer. The forward takes input embeddings, not
token ids, so that a soft label `E^T p` can be spliced in anywhere; it takes and returns a KV cache explicitly, so a
prompt's label-independent prefix is computed once and only the suffix is differentiated.

Shape suffixes: B batch, S new positions, T cached positions, D model width, H query heads, K kv heads,
G = H // K query heads per kv head, E head width, F MLP width, V vocabulary, L layers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tokenlabel_jax.config import ModelConfig
from tokenlabel_jax.errors import UserError

Params = dict[str, Any]
_NEG = -1e30  # a finite "minus infinity": a fully masked row gives a uniform softmax, never NaN


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KVCache:
  """Keys and values of already-processed positions, with which of them are real (not padding)."""

  k_LxBxTxKxE: jax.Array
  v_LxBxTxKxE: jax.Array
  valid_BxT: jax.Array

  @property
  def length(self) -> int:
    return self.valid_BxT.shape[1]


def init_params(cfg: ModelConfig, key: jax.Array, dtype=jnp.float32) -> Params:
  """Random weights (for tests and dry runs); real weights come from `tokenlabel_jax.loading`."""
  L, D, H, K, E, F, V = cfg.n_layers, cfg.dim, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.hidden_dim, cfg.vocab_size
  keys = iter(jax.random.split(key, 12))

  def normal(shape, fan_in):
    return (jax.random.normal(next(keys), shape) / np.sqrt(fan_in)).astype(dtype)

  params = {
      "embed_VxD": normal((V, D), 1.0) * 0.5,
      "layers": {
          "attn_norm_LxD": jnp.ones((L, D), dtype),
          "wq_LxDxHE": normal((L, D, H * E), D),
          "wk_LxDxKE": normal((L, D, K * E), D),
          "wv_LxDxKE": normal((L, D, K * E), D),
          "wo_LxHExD": normal((L, H * E, D), H * E),
          "mlp_norm_LxD": jnp.ones((L, D), dtype),
          "w_gate_LxDxF": normal((L, D, F), D),
          "w_up_LxDxF": normal((L, D, F), D),
          "w_down_LxFxD": normal((L, F, D), F),
      },
      "final_norm_D": jnp.ones((D,), dtype),
  }
  if cfg.qkv_bias:
    params["layers"].update(bq_LxHE=normal((L, H * E), 4.0), bk_LxKE=normal((L, K * E), 4.0),
                            bv_LxKE=normal((L, K * E), 4.0))
  if not cfg.tie_embeddings:
    params["lm_head_DxV"] = normal((D, V), D)
  return params


def _upcast(dtype) -> jnp.dtype:
  """At least float32 for norms, rotations and softmax (float64 stays float64, for gradient checks)."""
  return jnp.promote_types(dtype, jnp.float32)


def rope_frequencies(cfg: ModelConfig) -> np.ndarray:
  """Inverse frequencies per rotary pair, with Llama-3.1 scaling when configured."""
  E = cfg.head_dim
  inv_freq = 1.0 / (cfg.rope_theta ** (np.arange(0, E, 2, dtype=np.float64) / E))
  if cfg.rope_freq_factors is not None:
    factors = np.asarray(cfg.rope_freq_factors, np.float64)
    if factors.shape != inv_freq.shape:
      raise UserError(f"rope_freqs holds {factors.size} factors, the model's heads have {inv_freq.size} rotary pairs",
                      "the model file is inconsistent: re-export it")
    return (inv_freq / factors).astype(np.float32)
  rs = cfg.rope_scaling
  if rs is None:
    return inv_freq.astype(np.float32)
  wavelen = 2 * np.pi / inv_freq
  low_wavelen = rs.original_max_position / rs.low_freq_factor
  high_wavelen = rs.original_max_position / rs.high_freq_factor
  scaled = np.where(wavelen > low_wavelen, inv_freq / rs.factor, inv_freq)
  smooth = (rs.original_max_position / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor)
  medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
  scaled = np.where(medium, (1 - smooth) * scaled / rs.factor + smooth * scaled, scaled)
  return scaled.astype(np.float32)


def apply_rope(x_BxSxNxE: jax.Array, positions_BxS: jax.Array, inv_freq: np.ndarray) -> jax.Array:
  """Rotary embedding in the Hugging Face "rotate half" layout (first half of each head pairs with the second)."""
  up = _upcast(x_BxSxNxE.dtype)
  angles_BxSxE2 = positions_BxS[..., None].astype(up) * inv_freq.astype(up)
  cos, sin = jnp.cos(angles_BxSxE2)[:, :, None, :], jnp.sin(angles_BxSxE2)[:, :, None, :]
  x1, x2 = jnp.split(x_BxSxNxE.astype(up), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BxSxNxE.dtype)


def rms_norm(x: jax.Array, w: jax.Array, eps: float) -> jax.Array:
  up = _upcast(x.dtype)
  x32 = x.astype(up)
  x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
  return (x32 * w.astype(up)).astype(x.dtype)


def embed(params: Params, tokens_BxS: jax.Array) -> jax.Array:
  return params["embed_VxD"][tokens_BxS]


def soft_embed(params: Params, probs_xV: jax.Array) -> jax.Array:
  """The soft token `E^T p`: a probability-weighted mix of input embeddings."""
  return jnp.einsum("...v,vd->...d", probs_xV.astype(params["embed_VxD"].dtype), params["embed_VxD"])


def logits(params: Params, h_xD: jax.Array) -> jax.Array:
  """Vocabulary logits (float32) of final hidden states; apart from `forward` so that V is paid for only where read."""
  w_DxV = params["embed_VxD"].T if "lm_head_DxV" not in params else params["lm_head_DxV"]
  return jnp.einsum("...d,dv->...v", h_xD, w_DxV, preferred_element_type=_upcast(h_xD.dtype))


def token_logits(params: Params, h_xD: jax.Array, tokens_x: jax.Array) -> jax.Array:
  """The logits of chosen tokens only (float32): h · unembedding row, for readouts that need no normalizer."""
  if "lm_head_DxV" in params:
    u_xD = jnp.moveaxis(jnp.take(params["lm_head_DxV"], tokens_x, axis=1), 0, -1)
  else:
    u_xD = params["embed_VxD"][tokens_x]
  up = _upcast(h_xD.dtype)
  return jnp.sum(h_xD.astype(up) * u_xD.astype(up), axis=-1)


def _rows(x: jax.Array, B: int, axis: int) -> jax.Array:
  """A cache array with B rows along `axis` (a shared cache has 1 row: broadcast, not copied until used)."""
  return jnp.broadcast_to(x, (*x.shape[:axis], B, *x.shape[axis + 1:]))


def forward(params: Params, cfg: ModelConfig, x_BxSxD: jax.Array, positions_BxS: jax.Array,
            valid_BxS: jax.Array | None = None, cache: KVCache | Sequence[KVCache] | None = None,
            return_layers: bool | str = False, layers: tuple[int, int] | None = None
            ) -> tuple[jax.Array, KVCache, jax.Array | None]:
  """Runs S new positions, attending to `cache` (if any) and causally to themselves.

  `cache` may be several caches, attended in order as if concatenated along T; a cache with batch size 1 is shared by
  every row (a prompt head common to all examples is stored once). Returns the final-normed hidden states h_BxSxD, the
  caches extended by the new positions (one cache, batch B), and (if asked) per layer: the residual stream entering
  it (`return_layers=True`, L x B x S x D) or its MLP activations silu(gate)·up (`return_layers="mlp"`, L x B x S x F).

  `layers=(start, stop)` runs only those layers, `x_BxSxD` being the residual stream entering `start` (a cache must
  then hold exactly those layers): how a sparse autoencoder's reconstruction replaces one layer's input.
  """
  if return_layers not in (False, True, "mlp"):
    raise ValueError(f"return_layers={return_layers!r} is not False, True or 'mlp'")
  B, S, _ = x_BxSxD.shape
  K, E = cfg.n_kv_heads, cfg.head_dim
  G = cfg.n_heads // K
  if valid_BxS is None:
    valid_BxS = jnp.ones((B, S), bool)
  caches = [] if cache is None else [cache] if isinstance(cache, KVCache) else list(cache)
  inv_freq = rope_frequencies(cfg)
  causal_SxS = jnp.tril(jnp.ones((S, S), bool))
  mask_BxSxT = jnp.concatenate(
      [jnp.broadcast_to(c.valid_BxT[:, None, :], (B, S, c.length)) for c in caches]
      + [causal_SxS[None] & valid_BxS[:, None, :]], axis=-1)
  scale = 1.0 / np.sqrt(E)

  def layer(x_BxSxD, xs):
    w, cached_kv = xs
    x_in = x_BxSxD
    h = rms_norm(x_BxSxD, w["attn_norm_LxD"], cfg.norm_eps)
    q_BxSxHE, k_BxSxKE, v_BxSxKE = h @ w["wq_LxDxHE"], h @ w["wk_LxDxKE"], h @ w["wv_LxDxKE"]
    if cfg.qkv_bias:  # Qwen2
      q_BxSxHE, k_BxSxKE, v_BxSxKE = q_BxSxHE + w["bq_LxHE"], k_BxSxKE + w["bk_LxKE"], v_BxSxKE + w["bv_LxKE"]
    q_BxSxKxGxE = q_BxSxHE.reshape(B, S, K, G, E)
    k_BxSxKxE = k_BxSxKE.reshape(B, S, K, E)
    v_BxSxKxE = v_BxSxKE.reshape(B, S, K, E)
    q_BxSxKxGxE = apply_rope(q_BxSxKxGxE.reshape(B, S, K * G, E), positions_BxS, inv_freq).reshape(B, S, K, G, E)
    k_BxSxKxE = apply_rope(k_BxSxKxE, positions_BxS, inv_freq)
    keys_BxTxKxE = jnp.concatenate([_rows(k, B, 0) for k, _ in cached_kv] + [k_BxSxKxE], axis=1)
    values_BxTxKxE = jnp.concatenate([_rows(v, B, 0) for _, v in cached_kv] + [v_BxSxKxE], axis=1)
    scores_BxKxGxSxT = jnp.einsum("bskge,btke->bkgst", q_BxSxKxGxE, keys_BxTxKxE,
                                  preferred_element_type=_upcast(keys_BxTxKxE.dtype)) * scale
    scores_BxKxGxSxT = jnp.where(mask_BxSxT[:, None, None], scores_BxKxGxSxT, _NEG)
    probs = jax.nn.softmax(scores_BxKxGxSxT, axis=-1).astype(values_BxTxKxE.dtype)
    attn_BxSxKxGxE = jnp.einsum("bkgst,btke->bskge", probs, values_BxTxKxE)
    x_BxSxD = x_BxSxD + attn_BxSxKxGxE.reshape(B, S, K * G * E) @ w["wo_LxHExD"]
    h = rms_norm(x_BxSxD, w["mlp_norm_LxD"], cfg.norm_eps)
    mlp_BxSxF = jax.nn.silu(h @ w["w_gate_LxDxF"]) * (h @ w["w_up_LxDxF"])
    x_out = x_BxSxD + mlp_BxSxF @ w["w_down_LxFxD"]
    tap = mlp_BxSxF if return_layers == "mlp" else x_in if return_layers else None
    return x_out, (k_BxSxKxE, v_BxSxKxE, tap)

  cached_kv = tuple((c.k_LxBxTxKxE, c.v_LxBxTxKxE) for c in caches)
  stack = params["layers"]
  if layers is not None:
    stack = jax.tree.map(lambda w: w[layers[0]:layers[1]], stack)
  x_BxSxD = x_BxSxD.astype(params["embed_VxD"].dtype)
  if cfg.remat:  # keep only each layer's input for the backward pass; recompute the rest
    layer = jax.checkpoint(layer, prevent_cse=False, policy=jax.checkpoint_policies.nothing_saveable)
  x_BxSxD, (k_LxBxSxKxE, v_LxBxSxKxE, resid) = jax.lax.scan(layer, x_BxSxD, (stack, cached_kv))
  h_BxSxD = rms_norm(x_BxSxD, params["final_norm_D"], cfg.norm_eps)
  new_cache = KVCache(jnp.concatenate([_rows(c.k_LxBxTxKxE, B, 1) for c in caches] + [k_LxBxSxKxE], axis=2),
                      jnp.concatenate([_rows(c.v_LxBxTxKxE, B, 1) for c in caches] + [v_LxBxSxKxE], axis=2),
                      jnp.concatenate([_rows(c.valid_BxT, B, 0) for c in caches] + [valid_BxS], axis=1))
  return h_BxSxD, new_cache, resid


def forward_tokens(params: Params, cfg: ModelConfig, tokens_BxS: jax.Array, valid_BxS: jax.Array | None = None,
                   cache: KVCache | None = None, start_BxS: jax.Array | None = None):
  """Convenience: token ids in, float32 logits at every position out (positions continue after `cache`)."""
  B, S = tokens_BxS.shape
  positions = jnp.broadcast_to(jnp.arange(S), (B, S))
  if start_BxS is not None:
    positions = positions + start_BxS
  elif cache is not None:
    positions = positions + cache.valid_BxT.sum(-1, keepdims=True)
  h, new_cache, _ = forward(params, cfg, embed(params, tokens_BxS), positions, valid_BxS, cache)
  return logits(params, h), new_cache
