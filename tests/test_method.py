"""Tests that fail when the method breaks: the optimizer makes progress on a problem whose answer is known, the
forcing modes train and have the gradients they claim, gradient candidates are first-order gains, the vocabulary
scan and the word-like filter are right. (Comparing one run with another cannot see an optimizer that climbs.)"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tinymodel
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import evaluation
from tokenlabel_jax import objective
from tokenlabel_jax import optimization as opt_lib

PLANTED = 77
WORDS = ["dog", "cup", "cat", "pen", "owl", "map", "cow", "box", "bee", "hat", "eel", "car", "yak", "jar", "ant", "mug"]


@pytest.fixture(scope="module")
def tiny():
  return tinymodel.tiny_model()


def planted_namer_problem(tiny, seed=0):
  """The namer's score of token t on example i is log q_i[t]: with q_i[PLANTED] high exactly on the positives,
  the one label that separates them is PLANTED, and a working optimizer must find it from random v."""
  disc = disc_lib.get("namer")
  exs = [disc_lib.ExampleText(w, w) for w in WORDS]
  prep = disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, exs)
  rng = np.random.default_rng(seed)
  target_B = np.array([i % 2 == 0 for i in range(len(WORDS))], np.float32)
  z_BxV = rng.normal(size=(len(WORDS), tiny.cfg.vocab_size))
  z_BxV[:, PLANTED] += np.where(target_B > 0, 4.0, -4.0)
  logq = jax.nn.log_softmax(jnp.asarray(z_BxV, jnp.float32), axis=-1)
  return disc, dataclasses.replace(prep, logq_BxV=logq), target_B


@pytest.mark.parametrize("forcing", ["none", "straight_through", "gumbel"])
def test_optimization_finds_the_planted_label(tiny, forcing):
  """From random v, every seed ends with p concentrated on the planted token, and the task loss falls well below its
  start (an update of the wrong sign, or a loss of the wrong sign, ends elsewhere)."""
  disc, prep, target_B = planted_namer_problem(tiny)
  lcfg = opt_lib.LabelConfig(steps=150 if forcing == "gumbel" else 60, seeds=3, batch_size=8, lam_ent=0.0,
                             lam_kl=0.0, forcing=forcing, learning_rate=0.2)
  state, history = opt_lib.train(tiny.params, tiny.cfg, disc, lcfg, disc_lib.stack([prep]), target_B[None],
                                 np.ones(tiny.cfg.vocab_size, bool), log=lambda s: None)
  p = np.asarray(objective.label_probs(jnp.asarray(state.label["v_NxV"][0, :, 0]), jnp.ones(tiny.cfg.vocab_size)))
  assert (p.argmax(-1) == PLANTED).all(), p.argmax(-1)
  assert (p[:, PLANTED] > 0.5).all()
  acc = np.array([h["acc"][0] for h in history])  # steps x seeds
  assert (acc[-5:].mean(0) < 0.5 * acc[:5].mean(0)).all(), (acc[:5].mean(0), acc[-5:].mean(0))


EXAMPLES = [disc_lib.ExampleText("dog", "the [[dog]] ran"), disc_lib.ExampleText("cup", "a [[cup]] of tea"),
            disc_lib.ExampleText("cat", "my [[cat]] sleeps"), disc_lib.ExampleText("pen", "[[pen]]")]
TARGETS = np.array([1.0, 0.0, 1.0, 0.0])


def _f64(tiny, name):
  params = jax.tree.map(lambda x: x.astype(jnp.float64), tiny.params)
  disc = disc_lib.get(name)
  if disc.kind == "likelihood":
    disc = dataclasses.replace(disc, neutral_label="x")
  prep = disc_lib.prepare(params, tiny.cfg, tiny.tokenizer, disc, EXAMPLES)
  label = jax.tree.map(lambda x: x.astype(jnp.float64), objective.init_label(jax.random.PRNGKey(3), 1,
                                                                             tiny.cfg.vocab_size))
  return params, disc, prep, label


@pytest.mark.parametrize("name", ["judge"])
def test_straight_through_gradient_is_the_soft_gradient_at_the_hard_token(tiny, name):
  """Straight-through: the loss is the hard token's, its gradient w.r.t. v is the chain rule through p of the task
  loss's gradient w.r.t. the slot's distribution, taken at the one-hot point (checked there by central differences)."""
  with jax.enable_x64(True):
    params, disc, prep, label = _f64(tiny, name)
    mask = jnp.ones(tiny.cfg.vocab_size, bool)
    t = jnp.asarray(TARGETS)
    key = jax.random.PRNGKey(0)

    def st_loss(v):
      p = objective.label_probs(v, mask)
      return objective.task_loss(objective.forced(p, "straight_through", key, 1.0), label, params, tiny.cfg, disc,
                                 prep, t)

    v = label["v_NxV"]
    hard = jax.nn.one_hot(jnp.argmax(v, -1), v.shape[-1], dtype=v.dtype)
    task_at = lambda x: objective.task_loss(x, label, params, tiny.cfg, disc, prep, t)
    np.testing.assert_allclose(jax.jit(st_loss)(v), jax.jit(task_at)(hard), rtol=1e-12)  # forward: the hard token
    g_x = jax.jit(jax.grad(task_at))(hard)
    _, pull = jax.vjp(lambda vv: objective.label_probs(vv, mask), v)
    np.testing.assert_allclose(jax.jit(jax.grad(st_loss))(v), pull(g_x)[0], rtol=1e-9, atol=1e-12)
    # and g_x is the true derivative of the loss at the hard point, along a random direction of the simplex
    d = jnp.asarray(np.random.default_rng(0).normal(size=v.shape))
    d = d - d.mean()
    eps = 1e-5
    task_j = jax.jit(task_at)
    fd = (task_j(hard + eps * d) - task_j(hard - eps * d)) / (2 * eps)
    np.testing.assert_allclose(jnp.sum(g_x * d), fd, rtol=1e-6)


@pytest.mark.parametrize("name", ["likelihood"])
def test_gumbel_loss_gradient_matches_finite_differences(tiny, name):
  """For a fixed noise key the Gumbel-softmax loss is a smooth function of v: jax.grad against central differences."""
  with jax.enable_x64(True):
    params, disc, prep, label = _f64(tiny, name)
    mask = jnp.ones(tiny.cfg.vocab_size, bool)
    logq_ref = prep.logq_BxV.mean(0)

    def f(v):
      lab = dict(label, v_NxV=v)
      return objective.loss(lab, params, tiny.cfg, disc, prep, jnp.asarray(TARGETS), logq_ref, mask, 0.2, 0.2,
                             "gumbel", jax.random.PRNGKey(5), jnp.asarray(0.7, jnp.float64))[0]

    v = label["v_NxV"]
    g = jax.jit(jax.grad(f))(v)
    f = jax.jit(f)
    rng = np.random.default_rng(1)
    for _ in range(3):
      d = jnp.asarray(rng.normal(size=v.shape))
      eps = 1e-5
      fd = (f(v + eps * d) - f(v - eps * d)) / (2 * eps)
      np.testing.assert_allclose(jnp.sum(g * d), fd, rtol=1e-5)


@pytest.mark.parametrize("name", ["judge", "namer"])
def test_gradient_candidates_are_the_best_first_order_moves(tiny, name):
  """token_gradient[t] - token_gradient . p is the derivative of L_acc when p moves toward token t; the candidates
  are the tokens where a finite difference of the loss falls fastest."""
  with jax.enable_x64(True):
    params, disc, prep, label = _f64(tiny, name)
    mask = jnp.ones(tiny.cfg.vocab_size, bool).at[:32].set(False)
    t = jnp.asarray(TARGETS)
    g_V = jax.jit(objective.token_gradient, static_argnums=(2, 3))(label, params, tiny.cfg, disc, prep, t,
                                                                  prep.logq_BxV.mean(0), mask, 0.0)[0]
    p_NxV = objective.label_probs(label["v_NxV"], mask)
    lcfg = opt_lib.LabelConfig(lam_kl=0.0)
    label_S = jax.tree.map(lambda x: x[None], label)
    cands = opt_lib.gradient_candidates(params, tiny.cfg, disc, lcfg, label_S, prep, TARGETS, np.asarray(mask), 5)
    # Finite differences on the candidates and 35 other allowed tokens (all 224 take minutes in float64).
    others = np.random.default_rng(2).permutation(np.setdiff1d(np.flatnonzero(np.asarray(mask)), cands))[:35]
    allowed = np.r_[cands, others]
    eps = 1e-4

    def fd_gain(tok):
      d = jax.nn.one_hot(tok, tiny.cfg.vocab_size, dtype=jnp.float64)[None] - p_NxV
      task = lambda x: objective.task_loss(x, label, params, tiny.cfg, disc, prep, t)
      return (task(p_NxV + eps * d) - task(p_NxV - eps * d)) / (2 * eps)

    fd = np.asarray(jax.jit(jax.vmap(fd_gain))(jnp.asarray(allowed)))
    first_order = np.asarray(g_V)[allowed] - float(jnp.sum(jnp.where(mask, g_V, 0.0) * p_NxV[0]))
    np.testing.assert_allclose(first_order, fd, rtol=1e-4, atol=1e-6)
    assert cands == [int(k) for k in allowed[np.argsort(fd)[:5]]]  # the steepest descents, steepest first


class _Tokens:
  def __init__(self, strs):
    self.strs, self.vocab_size = strs, len(strs)

  def token_str(self, i):
    return self.strs[i]


def test_word_like_mask():
  """Word starts of 3+ letters (any script) and CJK tokens; not word pieces, short words, digits, markup or
  whitespace-laden tokens; ids past the tokenizer's vocabulary (padded embeddings) are never labels."""
  cases = {" dog": True, "dog": False, " ab": False, " the": True, "\n cat": False, " 中文": True, "中": True,
           " Dog": True, " x1y": False, " café": True, "<s>": False, "  dog": False, " über": True, " 123": False,
           " <tag>": False, "\tcat": False}
  tok = _Tokens(list(cases))
  mask = disc_lib.word_like_mask(tok, len(cases) + 3)
  assert mask.tolist() == list(cases.values()) + [False] * 3


def test_vocab_auc_is_each_tokens_auc(tiny):
  """score --vocab: every token's AUC as a single-token label of the namer equals the AUC of its score log q_i[t]."""
  disc, prep, target_B = planted_namer_problem(tiny, seed=1)
  positive_B = target_B > 0
  mask = np.ones(tiny.cfg.vocab_size, bool)
  mask[:5] = False
  auc = evaluation.vocab_auc(np.asarray(prep.logq_BxV), positive_B, mask, chunk=100)  # chunks not dividing V
  assert np.isnan(auc[:5]).all()
  want = [evaluation.roc_auc(np.asarray(prep.logq_BxV)[:, t], positive_B) for t in range(5, tiny.cfg.vocab_size)]
  np.testing.assert_allclose(auc[5:], want, atol=1e-6)
  assert np.nanargmax(auc) == PLANTED and auc[PLANTED] == 1.0


def test_score_feature_ranks_labels_and_scans_the_vocabulary(tiny, tmp_path, monkeypatch):
  """The `score` command's core on a feature (labeling.score_feature; importing the launcher here would define its
  absl flags a second time beside dry_run's): each label's row is evaluate_labels', ranks follow validation loss,
  and the vocabulary scan lists the tokens of highest validation AUC, best first."""
  from test_labeling import write_feature
  from tokenlabel_jax import data as data_lib
  from tokenlabel_jax import labeling
  from tokenlabel_jax import splits as splits_lib
  feature = data_lib.load_features(write_feature(tmp_path / "toy.jsonl"))[0]
  disc = disc_lib.get("namer")
  lcfg = opt_lib.LabelConfig(n_train=0, n_val=16, n_heldout=16)
  monkeypatch.setattr(disc_lib, "word_like_mask", lambda tok, v: np.ones(v, bool))  # byte tokens are not words
  out = labeling.score_feature(tiny, feature, disc, ["a", "b", "c"], lcfg, vocab=True, top_k=4)
  splits = labeling.build_splits(tiny, feature, disc, lcfg)
  rows = splits_lib.evaluate_labels(tiny, disc, [disc_lib.encode_label(tiny.tokenizer, l) for l in "abc"],
                                    splits["val"], splits["heldout"])
  for l, row in zip("abc", rows):
    assert out["labels"][l]["auc"] == row["auc"] and out["labels"][l]["val_loss"] == row["val_loss"]
  order = sorted("abc", key=lambda l: out["labels"][l]["val_loss"])
  assert [out["labels"][l]["rank"] for l in order] == [1.0, 2.0, 3.0]
  logq = np.asarray(splits["val"].prep.logq_BxV)
  aucs = np.array([evaluation.roc_auc(logq[:, t], splits["val"].positive_B) for t in range(tiny.cfg.vocab_size)])
  assert [a for _, a in out["vocab_top"]] == pytest.approx(sorted(aucs, reverse=True)[:4], abs=1e-6)
  assert [s for s, _ in out["vocab_top"]][0] == tiny.tokenizer.token_str(int(np.argmax(aucs)))
  # The baselines beside the labels, unranked, each with the figures it gets on its own on the same examples.
  from tokenlabel_jax import baselines
  from tokenlabel_jax import selection
  caches = labeling.needs_cache(tiny, disc, lcfg, selection.SelectConfig(extend_top=0), ["a", "b", "c"])
  base = baselines.labels(tiny, feature, lcfg.threshold, lcfg.seed, caches)
  assert set(out["baselines"]) == set(base) == {"top_token", "random_word"}
  alone = splits_lib.evaluate_labels(tiny, disc, [ids for _, ids in base.values()], splits["val"], splits["heldout"])
  for (k, (text, _)), row in zip(base.items(), alone):
    assert out["baselines"][k]["label"] == text and out["baselines"][k]["auc"] == pytest.approx(row["auc"])
    assert "rank" not in out["baselines"][k]
  with pytest.raises(disc_lib.UserError, match="one-token labels only"):  # the ensemble keeps no keys/values
    labeling.score_feature(tiny, feature, disc_lib.get("namer_both"), ["ab"], lcfg, vocab=False, top_k=4)
