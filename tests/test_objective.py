"""The objective and the discriminators on a tiny random Llama: gradients, caching, linearity, restarts."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tinymodel
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import model as model_lib
from tokenlabel_jax import objective
from tokenlabel_jax import optimization as opt_lib

EXAMPLES = [disc_lib.ExampleText("dog", "the [[dog]] ran"), disc_lib.ExampleText("cup", "a [[cup]] of tea"),
            disc_lib.ExampleText("cat", "my [[cat]] sleeps here"), disc_lib.ExampleText("pen", "[[pen]]")]
TARGETS = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
KINDS = ["judge", "likelihood", "namer", "likelihood_context"]


@pytest.fixture(scope="module")
def tiny():
  return tinymodel.tiny_model()


def _disc(name):
  d = disc_lib.get(name)
  return dataclasses.replace(d, neutral_label="x") if d.kind == "likelihood" else d


@pytest.mark.parametrize("name", KINDS)
def test_gradient_matches_finite_differences(tiny, name):
  """jax.grad of the full objective w.r.t. the label logits and calibration, against central differences (float64)."""
  with jax.enable_x64(True):
    params = jax.tree.map(lambda x: x.astype(jnp.float64), tiny.params)
    disc = _disc(name)
    prep = disc_lib.prepare(params, tiny.cfg, tiny.tokenizer, disc, EXAMPLES)
    label = jax.tree.map(lambda x: x.astype(jnp.float64),
                         objective.init_label(jax.random.PRNGKey(1), 1, tiny.cfg.vocab_size))
    label["scale_raw"] = jnp.asarray(0.3, jnp.float64)
    mask = jnp.ones(tiny.cfg.vocab_size, bool).at[:10].set(False)
    logq_ref = prep.logq_BxV.mean(0)
    targets = jnp.asarray(TARGETS, jnp.float64)

    def f(lab):
      return objective.loss(lab, params, tiny.cfg, disc, prep, targets, logq_ref, mask, 0.2, 0.2)[0]

    grads = jax.grad(f)(label)
    rng = np.random.default_rng(0)
    for leaf, idx in [("v_NxV", (0, 40)), ("v_NxV", (0, int(rng.integers(10, 256)))), ("scale_raw", ()),
                      ("bias", ())]:
      eps = 1e-5
      plus = jax.tree.map(lambda x: x, label)
      minus = jax.tree.map(lambda x: x, label)
      plus[leaf] = plus[leaf].at[idx].add(eps)
      minus[leaf] = minus[leaf].at[idx].add(-eps)
      fd = (f(plus) - f(minus)) / (2 * eps)
      an = grads[leaf][idx]
      if name == "judge" and leaf in ("scale_raw", "bias"):
        assert an == 0.0  # the paper's judge is not calibrated
      np.testing.assert_allclose(an, fd, rtol=1e-5, atol=1e-9)
    # Masked tokens get exactly zero gradient.
    assert np.all(np.asarray(grads["v_NxV"][0, :10]) == 0.0)


@pytest.mark.parametrize("name", ["judge", "likelihood_context"])
def test_cached_scores_equal_full_prompt_forward(tiny, name):
  """A hard label's score from the prefix cache equals the score from running the whole prompt at once."""
  disc = _disc(name)
  prep = disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, EXAMPLES)
  label = [tiny.tokenizer.encode(" a")[0]]
  cached = np.asarray(disc_lib.hard_scores(tiny.params, tiny.cfg, disc, prep, jnp.asarray([label]))[0])
  for i, ex in enumerate(EXAMPLES):
    pre, suf, readout = disc_lib.token_plan(disc, tiny.tokenizer, ex, 1)
    ids = jnp.asarray([pre + label + suf])
    logits, _ = model_lib.forward_tokens(tiny.params, tiny.cfg, ids)
    logp = jax.nn.log_softmax(logits[0], -1)
    full = sum(w * logp[len(pre) + pos, tok] for pos, tok, w in readout)
    if disc.kind == "likelihood":  # minus the neutral label's score, computed the same way
      neutral = tiny.tokenizer.encode(disc.neutral_label)
      lg, _ = model_lib.forward_tokens(tiny.params, tiny.cfg, jnp.asarray([pre + neutral + suf]))
      lpn = jax.nn.log_softmax(lg[0], -1)
      full -= sum(w * lpn[len(pre) + pos, tok] for pos, tok, w in readout)
    np.testing.assert_allclose(cached[i], float(full), atol=2e-4)


@pytest.mark.parametrize("name", KINDS)
def test_common_prompt_head_is_cached_once(tiny, name):
  """The head all prompts share is one cache row; each example keeps only its own prefix tokens."""
  disc = _disc(name)
  prep = disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, EXAMPLES)
  prefixes = [disc_lib.token_plan(disc, tiny.tokenizer, ex, 1)[0] for ex in EXAMPLES]
  head = prep.shared.length
  assert prep.shared.k_LxBxTxKxE.shape[1] == 1 and head > 0
  assert all(p[:head] == prefixes[0][:head] for p in prefixes)
  assert len({tuple(p[:head + 1]) for p in prefixes}) > 1 or min(map(len, prefixes)) == head + 1
  np.testing.assert_array_equal(np.asarray(prep.cache.valid_BxT).sum(1), [len(p) - head for p in prefixes])
  np.testing.assert_array_equal(np.asarray(prep.prefix_len_B), [len(p) for p in prefixes])


@pytest.mark.parametrize("name", ["judge", "namer", "likelihood_context"])
def test_splits_prepared_together_equal_each_split_alone(tiny, name, monkeypatch):
  """One prefix pass over several splits, with repeated prompts (run once) and lengths spread over several width
  buckets and chunks, gives every example the log q and the scores it gets when its split is prepared alone, in one
  chunk (which test_cached_scores_equal_full_prompt_forward checks against the whole prompt)."""
  monkeypatch.setattr(disc_lib.MEMO, "max_bytes", 0)  # every pass computed here, none remembered
  disc_lib.MEMO.clear()
  disc = _disc(name)
  words = ["dog", "a", "hippopotamus", "cup", "elephant seal", "a", "cat"]
  exs = [disc_lib.ExampleText(w, f"the [[{w}]]" + " and more" * (i % 4)) for i, w in enumerate(words)]
  exs.append(exs[0])  # an exact repeat
  splits = [exs[:5], exs[5:], exs[1:4]]
  preps = disc_lib.prepare_splits(tiny.params, tiny.cfg, tiny.tokenizer, disc, splits, chunk=2)
  own = [len(p) for p, _, _ in (disc_lib.token_plan(disc, tiny.tokenizer, ex, 1) for ex in exs)]
  assert max(own) - min(own) > 8  # the chunks fall in different width buckets
  label = jnp.asarray([tiny.tokenizer.encode(" ab" if disc.kind == "namer" else " a")])  # namer: 2 tokens use the cache
  for split, prep in zip(splits, preps):
    alone = disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, split, chunk=64)
    np.testing.assert_allclose(prep.logq_BxV, alone.logq_BxV, atol=2e-5)
    np.testing.assert_allclose(disc_lib.hard_scores(tiny.params, tiny.cfg, disc, prep, label),
                               disc_lib.hard_scores(tiny.params, tiny.cfg, disc, alone, label), atol=2e-4)
  n = int(preps[0].cache.valid_BxT[0].sum())  # the repeat's own prefix: one row, copied to both places
  np.testing.assert_array_equal(preps[0].cache.k_LxBxTxKxE[:, 0, :n], preps[1].cache.k_LxBxTxKxE[:, 2, :n])


def test_a_shorter_given_head_gives_the_same_prompts(tiny, monkeypatch):
  """`head`: a lone prompt is all head by default; given a shorter head (the constant part of a chat question) the
  rest runs as its own prefix, with the same log q and two-token scores. A head the prompts do not share is refused."""
  monkeypatch.setattr(disc_lib.MEMO, "max_bytes", 0)
  disc = _disc("namer")
  ex = [disc_lib.ExampleText("hippopotamus", "")]
  label = jnp.asarray([tiny.tokenizer.encode(" ab")])
  n = len(disc_lib.token_plan(disc, tiny.tokenizer, ex[0], 1)[0])
  whole = disc_lib.prepare_splits(tiny.params, tiny.cfg, tiny.tokenizer, disc, [ex])[0]
  assert int(whole.cache.valid_BxT.sum()) == 1  # by default only the last token is its own
  for head in (0, 3, n - 1):
    got = disc_lib.prepare_splits(tiny.params, tiny.cfg, tiny.tokenizer, disc, [ex], head=head)[0]
    assert int(got.cache.valid_BxT.sum()) == n - head
    np.testing.assert_allclose(got.logq_BxV, whole.logq_BxV, atol=2e-5)
    np.testing.assert_allclose(disc_lib.hard_scores(tiny.params, tiny.cfg, disc, got, label),
                               disc_lib.hard_scores(tiny.params, tiny.cfg, disc, whole, label), atol=2e-4)
  two = [ex[0], disc_lib.ExampleText("cat", "")]
  with pytest.raises(ValueError, match="do not share"):
    disc_lib.prepare_splits(tiny.params, tiny.cfg, tiny.tokenizer, disc, [two], head=n - 1)
  with pytest.raises(ValueError, match="do not share"):
    disc_lib.prepare_splits(tiny.params, tiny.cfg, tiny.tokenizer, disc, [ex], head=n)


@pytest.mark.parametrize("name", ["namer", "judge"])
def test_remembered_prefixes_equal_fresh_passes(tiny, name, monkeypatch):
  """Prompts seen in an earlier call come from the memo: the same log q, cache and scores as computed afresh."""
  disc = _disc(name)
  words = ["dog", "a", "hippopotamus", "cup", "elephant seal", "cat", "owl"]
  exs = [disc_lib.ExampleText(w, f"the [[{w}]]") for w in words]
  first, second = exs[:5], [exs[3], exs[5], exs[0], exs[2], exs[6]]  # three remembered, two new
  disc_lib.MEMO.clear()
  disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, first, chunk=4)
  hits = disc_lib.MEMO.hits
  remembered = disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, second, chunk=4)
  assert disc_lib.MEMO.hits - hits == 3
  again = disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, first, chunk=4)
  assert again.shared is remembered.shared  # the common head ran once
  monkeypatch.setattr(disc_lib.MEMO, "max_bytes", 0)
  disc_lib.MEMO.clear()
  fresh = disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, second, chunk=4)
  assert fresh.shared is not disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, second, chunk=4).shared
  np.testing.assert_allclose(remembered.logq_BxV, fresh.logq_BxV, atol=1e-5)
  np.testing.assert_array_equal(remembered.cache.valid_BxT, fresh.cache.valid_BxT)
  label = jnp.asarray([tiny.tokenizer.encode(" ab" if disc.kind == "namer" else " a")])  # namer: 2 tokens use the cache
  np.testing.assert_allclose(disc_lib.hard_scores(tiny.params, tiny.cfg, disc, remembered, label),
                             disc_lib.hard_scores(tiny.params, tiny.cfg, disc, fresh, label), atol=1e-4)


def test_namer_without_cache_keeps_log_q_and_refuses_longer_labels(tiny):
  """keep_cache=False gives the log q a full preparation gives (fresh and from the memo); its rows cannot serve a
  preparation that keeps keys/values, and a two-token label on it is an error, not a score from the head alone."""
  disc = _disc("namer")
  words = ["dog", "a", "hippopotamus", "cup", "elephant seal", "cat"]
  exs = [disc_lib.ExampleText(w, f"the [[{w}]]") for w in words]
  disc_lib.MEMO.clear()
  lean = disc_lib.prepare_splits(tiny.params, tiny.cfg, tiny.tokenizer, disc, [exs[:4]], chunk=4, keep_cache=False)[0]
  assert lean.cache.valid_BxT.shape == (4, 0)
  remembered = disc_lib.prepare_splits(tiny.params, tiny.cfg, tiny.tokenizer, disc, [exs[2:]], chunk=4,
                                       keep_cache=False)[0]
  full = disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, exs, chunk=4)  # rows without k/v: rerun
  disc_lib.MEMO.clear()
  fresh = disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, exs, chunk=4)
  np.testing.assert_allclose(full.logq_BxV, fresh.logq_BxV, atol=1e-5)
  np.testing.assert_array_equal(full.cache.valid_BxT, fresh.cache.valid_BxT)
  np.testing.assert_allclose(lean.logq_BxV, fresh.logq_BxV[:4], atol=1e-5)
  np.testing.assert_allclose(remembered.logq_BxV, fresh.logq_BxV[2:], atol=1e-5)
  one = jnp.asarray([tiny.tokenizer.encode(" a")[:1]])
  np.testing.assert_allclose(disc_lib.hard_scores(tiny.params, tiny.cfg, disc, lean, one),
                             disc_lib.hard_scores(tiny.params, tiny.cfg, disc, fresh, one)[:, :4], atol=1e-5)
  two = jnp.asarray([tiny.tokenizer.encode(" ab")[:2]])
  with pytest.raises(ValueError, match="keep_cache"):
    disc_lib.hard_scores(tiny.params, tiny.cfg, disc, lean, two)
  with pytest.raises(ValueError, match="keep_cache"):
    disc_lib.prepare_splits(tiny.params, tiny.cfg, tiny.tokenizer, _disc("judge"), [exs], keep_cache=False)


def test_ensemble_namer_averages_its_prompts_log_q(tiny):
  """namer_both: each phrasing prepared as its own namer (warmed up front too), log q averaged; a one-token label's
  score is the mean of its scores under the two namers. It keeps no keys/values, so longer labels are refused."""
  both = disc_lib.get("namer_both")
  members = [disc_lib.get("namer"), disc_lib.get("namer_other")]
  assert [v.template for v in disc_lib.variants(both)] == [d.template for d in members]
  exs = [disc_lib.ExampleText(w, f"the [[{w}]]") for w in ("dog", "a", "hippopotamus", "cup")]
  disc_lib.MEMO.clear()
  assert disc_lib.warm_memo(tiny.params, tiny.cfg, tiny.tokenizer, both, [exs], keep_cache=False, chunk=4) == 8
  hits = disc_lib.MEMO.hits
  ens = disc_lib.prepare_splits(tiny.params, tiny.cfg, tiny.tokenizer, both, [exs], chunk=4, keep_cache=False)[0]
  assert disc_lib.MEMO.hits - hits == 8  # both phrasings of every word came from the warm-up
  disc_lib.MEMO.clear()
  alone = [disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, d, exs, chunk=4) for d in members]
  assert not np.allclose(alone[0].logq_BxV, alone[1].logq_BxV, atol=1e-3)  # the phrasings differ
  np.testing.assert_allclose(ens.logq_BxV, (alone[0].logq_BxV + alone[1].logq_BxV) / 2, atol=1e-5)
  ids = jnp.asarray([[tiny.tokenizer.encode(" a")[0]], [tiny.tokenizer.encode(" b")[0]]])
  mean = sum(disc_lib.hard_scores(tiny.params, tiny.cfg, d, p, ids) for d, p in zip(members, alone)) / 2
  np.testing.assert_allclose(disc_lib.hard_scores(tiny.params, tiny.cfg, both, ens, ids), mean, atol=1e-5)
  lean = disc_lib.prepare_splits(tiny.params, tiny.cfg, tiny.tokenizer, both, [exs], keep_cache=True)[0]
  np.testing.assert_allclose(lean.logq_BxV, ens.logq_BxV, atol=1e-5)
  with pytest.raises(ValueError, match="keep_cache"):  # one prompt's keys/values would not match the averaged log q
    disc_lib.hard_scores(tiny.params, tiny.cfg, both, lean, jnp.asarray([tiny.tokenizer.encode(" ab")[:2]]))


@pytest.mark.parametrize("keep_cache", [False, True])
def test_warmed_memo_serves_every_prompt_with_fresh_rows(tiny, keep_cache, monkeypatch):
  """warm_memo runs a run's distinct prompts up front (exact widths, the most shared first, as many as the memo
  holds): a later preparation finds every one of them, with the rows a fresh pass gives; a memo too small for all
  keeps the most shared."""
  disc = _disc("namer")
  words = ["dog", "a", "hippopotamus", "cup", "elephant seal", "cat", "owl", "sea lion"]
  exs = [disc_lib.ExampleText(w, f"the [[{w}]]") for w in words]
  features = [exs[:5], exs[3:] + exs[:1], [exs[3], exs[0]]]  # dog and cup: shared by all three
  disc_lib.MEMO.clear()
  assert disc_lib.warm_memo(tiny.params, tiny.cfg, tiny.tokenizer, disc, features, keep_cache=keep_cache,
                            chunk=4) == len(words)
  hits, misses = disc_lib.MEMO.hits, disc_lib.MEMO.misses
  warmed = disc_lib.prepare_splits(tiny.params, tiny.cfg, tiny.tokenizer, disc, [exs], chunk=4,
                                   keep_cache=keep_cache)[0]
  assert (disc_lib.MEMO.hits - hits, disc_lib.MEMO.misses - misses) == (len(words), 0)
  monkeypatch.setattr(disc_lib.MEMO, "max_bytes", 0)
  disc_lib.MEMO.clear()
  fresh = disc_lib.prepare_splits(tiny.params, tiny.cfg, tiny.tokenizer, disc, [exs], chunk=4,
                                  keep_cache=keep_cache)[0]
  np.testing.assert_allclose(warmed.logq_BxV, fresh.logq_BxV, atol=1e-5)
  np.testing.assert_array_equal(warmed.cache.valid_BxT, fresh.cache.valid_BxT)
  if keep_cache:
    label = jnp.asarray([tiny.tokenizer.encode(" ab")[:2]])
    np.testing.assert_allclose(disc_lib.hard_scores(tiny.params, tiny.cfg, disc, warmed, label),
                               disc_lib.hard_scores(tiny.params, tiny.cfg, disc, fresh, label), atol=1e-4)
  row = tiny.cfg.vocab_size * 4
  monkeypatch.setattr(disc_lib.MEMO, "max_bytes", 2 * row)  # room for two log-q rows
  if not keep_cache:
    assert disc_lib.warm_memo(tiny.params, tiny.cfg, tiny.tokenizer, disc, features, keep_cache=False) == 2
    hits = disc_lib.MEMO.hits
    disc_lib.prepare_splits(tiny.params, tiny.cfg, tiny.tokenizer, disc, [[exs[0], exs[3]]], keep_cache=False)
    assert disc_lib.MEMO.hits - hits == 2


def test_memo_size_follows_the_vocabulary(tiny):
  """By default the memo holds the same number of prompts for every model (with a 152k vocabulary a fixed 1 GiB held
  fewer than the 26 concept features use, and the evicted ones ran again); a size given is kept."""
  memo = disc_lib.PrefixMemo()
  assert memo.for_model(tiny.params).max_bytes == 1 << 30  # a small vocabulary: the 1 GiB floor
  qwen = {"embed_VxD": jax.ShapeDtypeStruct((151936, 8), jnp.float32)}
  assert memo.for_model(qwen).max_bytes == disc_lib.PrefixMemo.AUTO_ROWS * 151936 * 4
  memo.max_bytes = 123
  assert memo.for_model(tiny.params).max_bytes == memo.for_model(qwen).max_bytes == 123


def test_width_buckets_bound_padding():
  widths = [disc_lib._width_bucket(n) for n in range(1, 600)]
  assert all(w >= n for n, w in zip(range(1, 600), widths))
  assert all(w - n < max(8, n / 4) for n, w in zip(range(1, 600), widths))
  assert len(set(widths)) < 40  # few distinct shapes: compiled passes are reused


@pytest.mark.model
@pytest.mark.parametrize("word", ["pup", "wildebeest", "7"])
def test_likelihood_word_is_tokenized_as_in_running_text(embedded_model, word):
  """After "Examples of<label>:" the word is read as in running text (": pup" is ':' + ' pup'), as in the few-shot
  lines; a word glued to the colon ('pup' without its space) made the embedded model a much weaker discriminator."""
  tok = embedded_model.tokenizer
  _, suffix, readout = disc_lib.token_plan(disc_lib.get("likelihood"), tok, disc_lib.ExampleText(word, word), 1)
  assert suffix == tok.encode(": " + word)
  assert [t for _, t, _ in readout] == tok.encode(" " + word)
  assert [pos for pos, _, _ in readout] == list(range(1, 1 + len(readout)))  # slot at 0, ':' at 1 predicts the word


def test_likelihood_template_must_end_with_the_word(tiny):
  disc = dataclasses.replace(disc_lib.get("likelihood"), template="Examples of{label}: {word}.")
  with pytest.raises(disc_lib.UserError, match="must end with"):
    disc_lib.token_plan(disc, tiny.tokenizer, EXAMPLES[0], 1)


def test_namer_soft_score_is_linear_in_p(tiny):
  disc = disc_lib.get("namer")
  prep = disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, EXAMPLES)
  p = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(3), (1, tiny.cfg.vocab_size)))
  soft = disc_lib.scores(tiny.params, tiny.cfg, disc, prep, p)
  all_hard = disc_lib.hard_scores(tiny.params, tiny.cfg, disc, prep, jnp.arange(tiny.cfg.vocab_size)[:, None])
  np.testing.assert_allclose(soft, p[0] @ all_hard, rtol=1e-4, atol=1e-4)


def test_namer_multi_token_label_is_teacher_forced(tiny):
  """log P(t1 t2 | prefix) from the cache equals the full forward's sum of the two log-probabilities."""
  disc = disc_lib.get("namer")
  prep = disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, EXAMPLES)
  ids = tiny.tokenizer.encode(" ab")
  got = np.asarray(disc_lib.hard_scores(tiny.params, tiny.cfg, disc, prep, jnp.asarray([ids]))[0])
  for i, ex in enumerate(EXAMPLES):
    pre, _, _ = disc_lib.token_plan(disc, tiny.tokenizer, ex, 1)
    logits, _ = model_lib.forward_tokens(tiny.params, tiny.cfg, jnp.asarray([pre + ids]))
    logp = jax.nn.log_softmax(logits[0], -1)
    want = sum(float(logp[len(pre) - 1 + j, t]) for j, t in enumerate(ids))
    np.testing.assert_allclose(got[i], want, atol=2e-4)


def test_entropy_and_kl_definitions():
  v = jax.random.normal(jax.random.PRNGKey(0), (1, 7))
  mask = jnp.array([True] * 6 + [False])
  logp = objective.label_logprobs(v, mask)
  p = np.exp(np.asarray(logp))[0]
  assert p[-1] == 0.0 and np.isclose(p.sum(), 1.0)
  np.testing.assert_allclose(objective.entropy(logp), -np.sum(p[:6] * np.log(p[:6])), rtol=1e-5)
  logq = np.log(np.array([0.1, 0.2, 0.3, 0.1, 0.1, 0.1, 0.1]))
  q = np.exp(logq[:6]) / np.exp(logq[:6]).sum()
  want = np.sum(p[:6] * (np.log(p[:6]) - np.log(q)))
  np.testing.assert_allclose(objective.kl_to_model(logp, jnp.asarray(logq), mask), want, rtol=1e-5)


def test_straight_through_forward_is_hard_backward_is_soft():
  p = jax.nn.softmax(jnp.array([[0.1, 2.0, -1.0]]))
  f = objective.forced(p, "straight_through", jax.random.PRNGKey(0), 1.0)
  np.testing.assert_allclose(f, [[0.0, 1.0, 0.0]], atol=1e-7)
  w = jnp.array([1.0, 2.0, 3.0])
  g = jax.grad(lambda q: jnp.sum(objective.forced(q, "straight_through", jax.random.PRNGKey(0), 1.0) * w))(p)
  np.testing.assert_allclose(g, [[1.0, 2.0, 3.0]])


@pytest.mark.parametrize("name", ["judge", "namer"])  # vmapped features; the namer's step loops over them
def test_restarts_and_features_vmapped_equal_separate_runs(tiny, name):
  """F features x S seeds in one step follow exactly the trajectories each follows alone."""
  disc = disc_lib.get(name)
  preps = [disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, exs) for exs in (EXAMPLES, EXAMPLES[::-1])]
  tgts = [TARGETS, TARGETS[::-1].copy()]
  mask = jnp.ones(tiny.cfg.vocab_size, bool)
  lcfg3 = opt_lib.LabelConfig(seeds=3, batch_size=3, steps=4)
  lcfg1 = dataclasses.replace(lcfg3, seeds=1)
  st = opt_lib.init_state(lcfg3, tiny.cfg.vocab_size, n_features=2)
  label, opt_state = st.label, st.opt_state
  both = disc_lib.stack(preps)  # different prompt lengths: padded
  singles = {}
  for f in range(2):
    for s in range(3):
      lab = jax.tree.map(lambda x: x[f:f + 1, s:s + 1], label)
      singles[f, s] = (lab, opt_lib.make_optimizer(lcfg3).init(lab))
  for step in range(3):
    label, opt_state, parts = opt_lib.train_step(tiny.cfg, disc, lcfg3, label, opt_state, jnp.asarray(step),
                                                 tiny.params, both, jnp.asarray(np.stack(tgts)), both.logq_BxV.mean(1),
                                                 mask)
    for (f, s), (lab, o) in singles.items():
      one = disc_lib.stack([preps[f]])
      lab, o, single_parts = opt_lib.train_step(tiny.cfg, disc, lcfg1, lab, o, jnp.asarray(step), tiny.params, one,
                                                jnp.asarray(tgts[f][None]), one.logq_BxV.mean(1), mask)
      singles[f, s] = (lab, o)
      np.testing.assert_allclose(parts["loss"][f, s], single_parts["loss"][0, 0], rtol=1e-5)
  for (f, s), (lab, _) in singles.items():
    # Adam normalizes each coordinate: where a gradient is ~0, rounding flips the sign of an lr-sized step.
    np.testing.assert_allclose(label["v_NxV"][f, s], lab["v_NxV"][0, 0], atol=1e-3)
    assert int(jnp.argmax(label["v_NxV"][f, s])) == int(jnp.argmax(lab["v_NxV"][0, 0]))


@pytest.mark.parametrize("name", ["namer", "likelihood"])
def test_steps_in_one_call_equal_one_call_per_step(tiny, name):
  """`train_steps` (n steps scanned in one compiled call, from any start) is `train_step` called n times: the same
  minibatch per step number, labels and loss parts."""
  disc = _disc(name)
  prep = disc_lib.stack([disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, exs)
                         for exs in (EXAMPLES, EXAMPLES[::-1])])
  tgt = jnp.asarray(np.stack([TARGETS, TARGETS[::-1]]))
  mask = jnp.ones(tiny.cfg.vocab_size, bool)
  lcfg = opt_lib.LabelConfig(seeds=2, batch_size=2, steps=10)
  ref = prep.logq_BxV.mean(1)
  st = opt_lib.init_state(lcfg, tiny.cfg.vocab_size, n_features=2)
  copy = lambda t: jax.tree.map(jnp.array, t)
  label, opt_state, history = copy(st.label), copy(st.opt_state), []
  for step in range(2, 7):
    label, opt_state, parts = opt_lib.train_step(tiny.cfg, disc, lcfg, label, opt_state, jnp.asarray(step),
                                                 tiny.params, prep, tgt, ref, mask)
    history.append(parts)
  scanned, _, parts_Fxn = opt_lib.train_steps(tiny.cfg, disc, lcfg, 5, copy(st.label), copy(st.opt_state),
                                              jnp.asarray(2), tiny.params, prep, tgt, ref, mask)
  np.testing.assert_allclose(scanned["v_NxV"], label["v_NxV"], atol=1e-5)
  for i, parts in enumerate(history):
    np.testing.assert_allclose(parts_Fxn["loss"][:, i], parts["loss"], rtol=1e-5)
    np.testing.assert_array_equal(parts_Fxn["top_id"][:, i], parts["top_id"])
  p = objective.label_probs(label["v_NxV"][:, :, 0], mask)
  np.testing.assert_allclose(history[-1]["top_p"][..., 0], p.max(-1), rtol=1e-5)
  np.testing.assert_array_equal(history[-1]["top_id"][..., 0], p.argmax(-1))


def test_optimizer_is_adamw_with_paper_defaults():
  lcfg = opt_lib.LabelConfig()
  assert (lcfg.weight_decay, lcfg.lam_ent, lcfg.lam_kl) == (0.01, 0.2, 0.2)
  # One AdamW step on a zero gradient only decays the weights.
  opt = opt_lib.make_optimizer(lcfg)
  x = {"w": jnp.ones(3)}
  upd, _ = opt.update({"w": jnp.zeros(3)}, opt.init(x), x)
  np.testing.assert_allclose(optax.apply_updates(x, upd)["w"], 1 - lcfg.learning_rate * 0.01, rtol=1e-6)


def test_fit_calibration_recovers_a_logistic_model():
  rng = np.random.default_rng(0)
  s = rng.normal(size=2000)
  t = (rng.random(2000) < 1 / (1 + np.exp(-(0.8 * s - 0.3)))).astype(np.float32)
  a, b, loss = opt_lib.fit_calibration(s[None], t, max_scale=None, iters=400)
  assert abs(a[0] - 0.8) < 0.15 and abs(b[0] + 0.3) < 0.15
  a_capped, _, loss_capped = opt_lib.fit_calibration(3 * s[None], t, max_scale=0.1, iters=400)
  assert a_capped[0] <= 0.1 + 1e-6 and loss_capped[0] > loss[0]


def test_prompt_longer_than_context_is_a_user_error():
  from tokenlabel_jax.errors import UserError
  small = tinymodel.tiny_model(max_seq_len=40)
  long_ex = [disc_lib.ExampleText("dog", "word " * 30 + "[[dog]]")]
  with pytest.raises(UserError, match="longer than the model's context"):
    disc_lib.prepare(small.params, small.cfg, small.tokenizer, disc_lib.get("likelihood_context"), long_ex)
