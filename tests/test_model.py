"""The forward pass on tiny random Llamas: prefix caching, padding, gradients, rotary frequencies, soft tokens."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tokenlabel_jax import model as M
from tokenlabel_jax.config import ModelConfig, RopeScaling

fwd = jax.jit(M.forward, static_argnames=("cfg", "return_layers"))


@pytest.fixture(scope="module")
def tiny():
  cfg = ModelConfig.tiny()
  return cfg, jax.jit(M.init_params, static_argnums=0)(cfg, jax.random.PRNGKey(0))


def _full_h(params, cfg, tokens) -> np.ndarray:
  """Final hidden states (S x D) of one unpadded sequence, no cache."""
  t = jnp.asarray([tokens])
  return np.asarray(fwd(params, cfg, M.embed(params, t), jnp.arange(len(tokens))[None])[0][0])


def test_prefix_cache_matches_full_forward(tiny):
  """Prefix through the cache, then the rest: same hidden states as one pass (split after 1 token, and in thirds)."""
  cfg, params = tiny
  tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, 12)
  full = _full_h(params, cfg, tokens)
  for cuts in [(1,), (4, 8)]:  # each piece shape compiles once: keep few
    bounds = (0, *cuts, len(tokens))
    cache, pieces = None, []
    for a, b in zip(bounds[:-1], bounds[1:]):
      t = jnp.asarray([tokens[a:b]])
      h, cache, _ = fwd(params, cfg, M.embed(params, t), jnp.arange(a, b)[None], cache=cache)
      pieces.append(np.asarray(h[0]))
    assert cache.length == len(tokens)
    np.testing.assert_allclose(np.concatenate(pieces), full, atol=1e-5, err_msg=f"cuts {cuts}")


def test_padded_prefix_cache_matches_unpadded(tiny):
  """Prefixes of different real lengths, right-padded in one batch; each suffix continues at its own position."""
  cfg, params = tiny
  rng = np.random.default_rng(1)
  real, P, S = [2, 7, 5], 7, 6
  prefix = rng.integers(0, cfg.vocab_size, (3, P))
  suffix = rng.integers(0, cfg.vocab_size, (3, S))
  valid = np.arange(P)[None] < np.array(real)[:, None]
  _, cache, _ = fwd(params, cfg, M.embed(params, jnp.asarray(prefix)), jnp.broadcast_to(jnp.arange(P), (3, P)),
                    valid_BxS=jnp.asarray(valid))
  pos = np.array(real)[:, None] + np.arange(S)[None]
  h, _, _ = fwd(params, cfg, M.embed(params, jnp.asarray(suffix)), jnp.asarray(pos), cache=cache)
  logits, _ = jax.jit(M.forward_tokens, static_argnames="cfg")(params, cfg, jnp.asarray(suffix), cache=cache)
  # Reference: each unpadded sequence, right-aligned garbage after it in one batch (no mask: causality hides it).
  seqs = np.stack([np.concatenate([prefix[b, :real[b]], suffix[b], prefix[b, real[b]:]]) for b in range(3)])
  full = np.asarray(fwd(params, cfg, M.embed(params, jnp.asarray(seqs)),
                        jnp.broadcast_to(jnp.arange(P + S), (3, P + S)))[0])
  for b in range(3):
    ref = full[b, real[b]:real[b] + S]
    np.testing.assert_allclose(np.asarray(h[b]), ref, atol=1e-5, err_msg=f"example {b}")
    np.testing.assert_allclose(np.asarray(logits[b]), np.asarray(M.logits(params, ref)), atol=1e-4)
  # Sanity: ignoring the padding (all prefix positions valid) would change the answer.
  _, bad_cache, _ = fwd(params, cfg, M.embed(params, jnp.asarray(prefix)), jnp.broadcast_to(jnp.arange(P), (3, P)),
                        valid_BxS=jnp.ones((3, P), bool))
  h_bad, _, _ = fwd(params, cfg, M.embed(params, jnp.asarray(suffix)), jnp.asarray(pos), cache=bad_cache)
  assert np.abs(np.asarray(h_bad[0]) - np.asarray(h[0])).max() > 1e-2


def test_shared_head_cache_broadcasts_to_every_row(tiny):
  """A 1-row head cache, then per-row caches of different lengths, then new positions: same as each full sequence."""
  cfg, params = tiny
  rng = np.random.default_rng(4)
  head = rng.integers(0, cfg.vocab_size, 5)
  own_len, P, S = np.array([3, 1]), 3, 4
  own = rng.integers(0, cfg.vocab_size, (2, P))
  new = rng.integers(0, cfg.vocab_size, (2, S))
  _, head_cache, _ = fwd(params, cfg, M.embed(params, jnp.asarray([head])), jnp.arange(5)[None])
  own_valid = np.arange(P)[None] < own_len[:, None]
  _, joined, _ = fwd(params, cfg, M.embed(params, jnp.asarray(own)), jnp.asarray(5 + np.arange(P)[None].repeat(2, 0)),
                     valid_BxS=jnp.asarray(own_valid), cache=head_cache)
  assert joined.k_LxBxTxKxE.shape[1] == 2 and joined.length == 5 + P
  own_cache = M.KVCache(joined.k_LxBxTxKxE[:, :, 5:], joined.v_LxBxTxKxE[:, :, 5:], joined.valid_BxT[:, 5:])
  pos = jnp.asarray(5 + own_len[:, None] + np.arange(S)[None])
  h, _, _ = fwd(params, cfg, M.embed(params, jnp.asarray(new)), pos, cache=(head_cache, own_cache))
  for b in range(2):
    full = _full_h(params, cfg, np.concatenate([head, own[b, :own_len[b]], new[b]]))
    np.testing.assert_allclose(np.asarray(h[b]), full[-S:], atol=1e-5, err_msg=f"row {b}")


def test_padding_does_not_leak(tiny):
  """Padded positions (left, middle, right; in the new positions and in the cache) never change real outputs."""
  cfg, params = tiny
  rng = np.random.default_rng(2)
  S = 10
  valid = np.ones((2, S), bool)
  valid[0, :3] = False  # left padding
  valid[1, [4, 5, 9]] = False  # holes and right padding
  pos = np.maximum(np.cumsum(valid, axis=1) - 1, 0)  # real tokens at 0, 1, 2, ... as in the unpadded sequence
  tokens = rng.integers(0, cfg.vocab_size, (2, S))

  def run(toks, positions):
    h, cache, _ = fwd(params, cfg, M.embed(params, jnp.asarray(toks)), jnp.asarray(positions),
                      valid_BxS=jnp.asarray(valid))
    return np.asarray(h), cache

  suffix = rng.integers(0, cfg.vocab_size, (2, 4))
  seqs = np.stack([np.concatenate([tokens[b][valid[b]], suffix[b]]) for b in range(2)])  # 7 real + 4 each
  full = np.asarray(fwd(params, cfg, M.embed(params, jnp.asarray(seqs)), jnp.broadcast_to(jnp.arange(11), (2, 11)))[0])
  h, cache = run(tokens, pos)
  assert np.isfinite(h).all()
  for b in range(2):
    np.testing.assert_allclose(h[b][valid[b]], full[b, :7], atol=1e-5)
  other = np.where(valid, tokens, rng.integers(0, cfg.vocab_size, (2, S)))
  assert (other != tokens).any()
  h2, cache2 = run(other, np.where(valid, pos, 77))
  np.testing.assert_allclose(h2[valid], h[valid], atol=1e-6)
  # ...and a suffix attending to either cache sees the same thing.
  spos = jnp.asarray(valid.sum(1, keepdims=True) + np.arange(4))
  s1 = fwd(params, cfg, M.embed(params, jnp.asarray(suffix)), spos, cache=cache)[0]
  s2 = fwd(params, cfg, M.embed(params, jnp.asarray(suffix)), spos, cache=cache2)[0]
  np.testing.assert_allclose(np.asarray(s2), np.asarray(s1), atol=1e-6)
  np.testing.assert_allclose(np.asarray(s1), full[:, 7:], atol=1e-5)


@pytest.mark.parametrize("cached", [False, True])
def test_grad_matches_finite_differences(tiny, cached):
  """d(random projection of the logits)/d(input embeddings) against central differences, in float64."""
  cfg, params32 = tiny
  rng = np.random.default_rng(3)
  with jax.enable_x64(True):
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params32)
    S = 5
    cache, start = None, np.zeros((2, 1), int)
    if cached:
      valid = np.array([[True] * 4 + [False] * 2, [True] * 6])
      prefix = jnp.asarray(rng.integers(0, cfg.vocab_size, (2, 6)))
      _, cache, _ = fwd(params, cfg, M.embed(params, prefix), jnp.broadcast_to(jnp.arange(6), (2, 6)),
                              valid_BxS=jnp.asarray(valid))
      start = valid.sum(1, keepdims=True)
    pos = jnp.asarray(start + np.arange(S))
    x = M.embed(params, jnp.asarray(rng.integers(0, cfg.vocab_size, (2, S))))
    x = x + 0.1 * rng.standard_normal((2, S, cfg.dim))
    w = jnp.asarray(rng.standard_normal((2, S, cfg.vocab_size)))

    def f(x_BxSxD):
      h, _, _ = M.forward(params, cfg, x_BxSxD, pos, cache=cache)
      return jnp.sum(M.logits(params, h) * w)

    f_and_g = jax.jit(jax.value_and_grad(f))  # one compilation serves both the gradient and the differences
    g = np.asarray(f_and_g(x)[1])
    assert g.dtype == np.float64 and np.abs(g).max() > 0
    eps = 1e-5
    dirs = [rng.standard_normal(x.shape) for _ in range(3)]
    for idx in [(0, 0, 3), (1, S - 1, 10), (0, 2, 40)]:  # single coordinates too (early ones feed later positions)
      d = np.zeros(x.shape)
      d[idx] = 1.0
      dirs.append(d)
    for d in dirs:
      fd = (float(f_and_g(x + eps * d)[0]) - float(f_and_g(x - eps * d)[0])) / (2 * eps)
      an = float(np.sum(g * d))
      assert abs(fd - an) <= 1e-6 * max(1.0, abs(fd)), (fd, an)


def _llama31_reference(head_dim: int, theta: float, rs: RopeScaling | None) -> list[float]:
  """Llama 3.1's `apply_scaling`, restated per frequency: keep short wavelengths, divide long ones by the factor,
  and interpolate linearly in (original context / wavelength) in between."""
  freqs = [1.0 / theta ** (2 * i / head_dim) for i in range(head_dim // 2)]
  if rs is None:
    return freqs
  low_wavelen = rs.original_max_position / rs.low_freq_factor  # longer wavelengths than this: fully scaled
  high_wavelen = rs.original_max_position / rs.high_freq_factor  # shorter than this: untouched
  out = []
  for f in freqs:
    wavelen = 2 * math.pi / f
    if wavelen < high_wavelen:
      out.append(f)
    elif wavelen > low_wavelen:
      out.append(f / rs.factor)
    else:
      t = (rs.original_max_position / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor)
      out.append((1 - t) * f / rs.factor + t * f)
  return out


def test_remat_same_gradient_less_step_memory(tiny):
  """Rematerialized layers give the same gradient w.r.t. the input embeddings, with less memory kept for backward."""
  cfg, params = tiny
  rng = np.random.default_rng(5)
  B, S = 4, 32
  x = M.embed(params, jnp.asarray(rng.integers(0, cfg.vocab_size, (B, S))))
  pos = jnp.broadcast_to(jnp.arange(S), (B, S))
  w = jnp.asarray(rng.standard_normal((B, S, cfg.dim)), jnp.float32)

  def grad_fn(c):
    return jax.jit(jax.grad(lambda x_: jnp.sum(M.forward(params, c, x_, pos)[0] * w)))

  plain, remat = grad_fn(cfg), grad_fn(dataclasses.replace(cfg, remat=True))
  np.testing.assert_allclose(np.asarray(remat(x)), np.asarray(plain(x)), atol=1e-5)
  temp = [f.lower(x).compile().memory_analysis().temp_size_in_bytes for f in (plain, remat)]
  assert temp[1] < temp[0], temp


@pytest.mark.parametrize("cfg", [ModelConfig.tiny(), ModelConfig.tiny(head_dim=32), ModelConfig.llama31_8b(),
                                 ModelConfig.llama32_1b()], ids=["tiny", "tiny-hd32", "llama3.1-8b", "llama3.2-1b"])
def test_rope_frequencies_llama3_scaling(cfg):
  got = M.rope_frequencies(cfg)
  want = np.array(_llama31_reference(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling))
  plain = np.array(_llama31_reference(cfg.head_dim, cfg.rope_theta, None))
  assert got.shape == (cfg.head_dim // 2,)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  # All three regimes occur, so the comparison covers the whole formula.
  ratio = want / plain
  rs = cfg.rope_scaling
  assert np.isclose(ratio, 1.0).any() and np.isclose(ratio, 1 / rs.factor).any()
  assert ((ratio > 1 / rs.factor + 1e-6) & (ratio < 1 - 1e-6)).any()
  unscaled = M.rope_frequencies(dataclasses.replace(cfg, rope_scaling=None))
  np.testing.assert_allclose(unscaled, plain, rtol=1e-6)


def test_soft_embed_of_one_hot_is_embed(tiny):
  cfg, params = tiny
  tokens = jnp.asarray(np.random.default_rng(4).integers(0, cfg.vocab_size, (3, 7)))
  onehot = jax.nn.one_hot(tokens, cfg.vocab_size)
  np.testing.assert_allclose(np.asarray(M.soft_embed(params, onehot)), np.asarray(M.embed(params, tokens)),
                             rtol=1e-6, atol=1e-7)
  mix = 0.25 * onehot + 0.75 * jax.nn.one_hot((tokens + 1) % cfg.vocab_size, cfg.vocab_size)
  np.testing.assert_allclose(np.asarray(M.soft_embed(params, mix)),
                             0.25 * np.asarray(M.embed(params, tokens)) +
                             0.75 * np.asarray(M.embed(params, (tokens + 1) % cfg.vocab_size)), rtol=1e-5, atol=1e-6)


def test_return_layers_is_residual_entering_each_layer(tiny):
  """resid[l] is the stream after l layers: its final norm equals the output of the first l layers alone."""
  cfg, params = tiny
  tokens = jnp.asarray(np.random.default_rng(5).integers(0, cfg.vocab_size, (2, 6)))
  x = M.embed(params, tokens)
  pos = jnp.broadcast_to(jnp.arange(6), (2, 6))
  _, _, resid = fwd(params, cfg, x, pos, return_layers=True)
  assert resid.shape == (cfg.n_layers, 2, 6, cfg.dim)
  np.testing.assert_allclose(np.asarray(resid[0]), np.asarray(x), atol=1e-6)
  for n in range(1, cfg.n_layers):
    sub = dict(params, layers=jax.tree.map(lambda a, n=n: a[:n], params["layers"]))
    h_sub = fwd(sub, dataclasses.replace(cfg, n_layers=n), x, pos)[0]
    np.testing.assert_allclose(np.asarray(M.rms_norm(resid[n], params["final_norm_D"], cfg.norm_eps)),
                               np.asarray(h_sub), atol=1e-5)


@pytest.mark.parametrize("tied", [False, True])
def test_token_logits_equal_gathered_logits(tied):
  """The judge's readout path: chosen tokens' logits without the vocabulary-wide head, tied or untied."""
  cfg = ModelConfig.tiny(tie_embeddings=tied)
  params = M.init_params(cfg, jax.random.PRNGKey(0))
  assert ("lm_head_DxV" in params) != tied
  h_BxRxD = jax.random.normal(jax.random.PRNGKey(1), (3, 2, cfg.dim))
  tok_BxR = jnp.asarray([[5, 7], [0, 255], [9, 9]])
  want = jnp.take_along_axis(M.logits(params, h_BxRxD), tok_BxR[..., None], axis=-1)[..., 0]
  np.testing.assert_allclose(M.token_logits(params, h_BxRxD, tok_BxR), want, rtol=1e-5, atol=1e-5)
