"""Tests for loading, checking, splitting and sampling activation records."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tokenlabel_jax import data
from tokenlabel_jax.errors import UserError


def rec(tokens, acts, **extra):
  return {"tokens": tokens, "activations": acts, **extra}


def write(path, lines):
  """Writes records (dicts) or raw strings, one a line."""
  path.write_text("".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines), encoding="utf-8")
  return path


GOOD = rec([" The", " dog", " ran"], [0.0, 3.0, 0.5])
OTHER = rec([" a", " cat"], [0.0, 0.0])


def make_feature(acts_per_record, splits=None, name="f"):
  records = []
  for k, acts in enumerate(acts_per_record):
    a = np.asarray(acts, dtype=np.float32)
    records.append(data.Record(tuple(f"t{k}_{i}" for i in range(len(a))), a,
                               None if splits is None else splits[k], f"mem:{k + 1}"))
  return data.Feature(name, tuple(records))


# ---------------------------------------------------------------------------------------------------------------
# Loading.


def test_load_single_file(tmp_path):
  f = write(tmp_path / "dogs.jsonl", [GOOD, "", rec([" b"], [0], split="heldout", extra=1), OTHER])
  [feature] = data.load_features(f)
  assert feature.name == "dogs"
  assert len(feature.records) == 3
  r0, r1, r2 = feature.records
  assert r0.tokens == (" The", " dog", " ran")
  assert r0.activations.dtype == np.float32
  np.testing.assert_array_equal(r0.activations, [0.0, 3.0, 0.5])
  assert r0.split is None and r1.split == "heldout"
  assert r0.source.endswith("dogs.jsonl:1")
  assert r1.source.endswith("dogs.jsonl:3")  # the blank line still counts
  assert r2.source.endswith("dogs.jsonl:4")
  with pytest.raises(ValueError):
    r0.activations[0] = 1.0  # records are immutable


def test_load_directory_groups_features(tmp_path):
  write(tmp_path / "b.jsonl", [GOOD, rec([" x", " y"], [1.0, 0.0], feature="shared")])
  write(tmp_path / "a.jsonl", [rec([" p", " q"], [0.0, 2.0], feature="shared"), rec([" z", " w"], [0.0, 1.0])])
  (tmp_path / "notes.txt").write_text("not records")
  features = data.load_features(tmp_path)
  assert [f.name for f in features] == ["shared", "a", "b"]  # a.jsonl is read first
  shared = features[0]
  assert [r.tokens for r in shared.records] == [(" p", " q"), (" x", " y")]
  assert [r.source.split("/")[-1] for r in shared.records] == ["a.jsonl:1", "b.jsonl:2"]


def error_of(tmp_path, lines, name="x.jsonl") -> UserError:
  f = write(tmp_path / name, lines)
  with pytest.raises(UserError) as e:
    data.load_features(f)
  assert e.value.fix, "every UserError says how to fix it"
  return e.value


def test_missing_path(tmp_path):
  with pytest.raises(UserError) as e:
    data.load_features(tmp_path / "nope.jsonl")
  assert "nope.jsonl" in e.value.what and e.value.fix


def test_directory_without_jsonl(tmp_path):
  with pytest.raises(UserError) as e:
    data.load_features(tmp_path)
  assert "no .jsonl" in e.value.what
  # A .json file is read as another tool's export (tokenlabel_jax.formats); one of no known shape is named as such.
  (tmp_path / "a.json").write_text("{}")
  with pytest.raises(UserError) as e:
    data.load_features(tmp_path)
  assert "a.json: not a known activation format" in e.value.what


def test_empty_file(tmp_path):
  assert "empty" in error_of(tmp_path, ["", "  "]).what


@pytest.mark.parametrize("lines, where, words", [
    ([GOOD, '{"tokens": [" a"], "activations": [0.0'], ":2", ["invalid JSON"]),
    ([GOOD, OTHER, "[1, 2]"], ":3", ["not an object"]),
    ([GOOD, {"activations": [1.0]}], ":2", ['"tokens"', "missing"]),
    ([{"tokens": [" a"]}], ":1", ['"activations"', "missing"]),
    ([GOOD, rec([" a", 7], [0.0, 1.0])], ":2", ['"tokens"', "strings", "token 1"]),
    ([GOOD, rec(" a b", [0.0, 1.0])], ":2", ['"tokens"', "strings"]),
    ([GOOD, rec([" a", " b"], [0.0, "1.5"])], ":2", ['"activations"', "numbers", "activation 1"]),
    ([GOOD, rec([" a", " b"], [0.0, None])], ":2", ['"activations"', "numbers"]),
    ([GOOD, rec([" a", " b"], [0.0, True])], ":2", ['"activations"', "numbers"]),
    ([GOOD, rec([" a", " b"], [[0.0], [1.0]])], ":2", ['"activations"', "numbers"]),
    ([GOOD, rec([" a", " b", " c"], [0.0, 1.0])], ":2", ["3 tokens", "2 activations"]),
    ([GOOD, rec([], [])], ":2", ['"tokens"', "empty"]),
    ([GOOD, '{"tokens": [" a", " b"], "activations": [0.0, NaN]}'], ":2", ['"activations"', "token 1"]),
    ([GOOD, '{"tokens": [" a", " b", " c"], "activations": [0, Infinity, 0]}'], ":2", ["token 1", "non-finite"]),
    ([GOOD, rec([" a", " b"], [1e39, 0.0])], ":2", ["token 0", "non-finite"]),  # overflows float32
    ([GOOD, rec([" a", " b"], [10**400, 0.0])], ":2", ["token 0", "non-finite"]),  # overflows float64
    ([GOOD, rec([" a"], [0.0], split="test")], ":2", ['"split"', '"test"']),
    ([GOOD, rec([" a"], [0.0], feature=3)], ":2", ['"feature"']),
    ([GOOD, rec([" a"], [0.0], feature="layer5/12")], ":2", ["'layer5/12'", "folder"]),  # was: a nested folder
    ([GOOD, rec([" a"], [0.0], feature="..")], ":2", ["'..'", "folder"]),  # was: results beside --output_dir
    ([GOOD, rec([" a"], [0.0], feature="ü" * 101)], ":2", ["202 bytes", "too long"]),  # was: OSError after labeling
])
def test_bad_record_names_line_and_field(tmp_path, lines, where, words):
  what = error_of(tmp_path, lines).what
  assert f"x.jsonl{where}:" in what, what
  for w in words:
    assert w in what, (w, what)


def test_first_problem_is_reported(tmp_path):
  what = error_of(tmp_path, [GOOD, rec([" a"], [0.0, 1.0]), "not json"]).what
  assert "x.jsonl:2:" in what


def test_negative_only_feature(tmp_path):
  e = error_of(tmp_path, [OTHER, rec([" a", " b"], [-1.0, 0.0])], name="quiet.jsonl")
  assert "'quiet'" in e.what and "negative-only" in e.what and "quiet.jsonl" in e.what


def test_negative_only_feature_among_others_is_skipped_with_a_warning(tmp_path, capsys):
  """An export of many SAE latents holds some that never fire: those are skipped by name, not the run refused (was:
  one dead latent among thousands stopped everything). When none can be labeled, the first one's problem is the
  error (test_negative_only_feature)."""
  f = write(tmp_path / "x.jsonl", [GOOD, rec([" a"], [0.0], feature="dead"), rec([" b"], [2.0], feature="always")])
  assert [x.name for x in data.load_features(f)] == ["x"]
  err = capsys.readouterr().err
  assert "skipped 2 of 3 features" in err and "'dead', 'always'" in err and "negative-only" in err


def test_feature_without_negative(tmp_path):
  e = error_of(tmp_path, [rec([" a", " b"], [1.0, 2.0]), rec([" c"], [0.1])], name="always.jsonl")
  assert "'always'" in e.what and "no negative" in e.what


def test_a_threshold_beyond_every_activation_names_the_threshold_not_the_data():
  """Was: "split 'train' has no positive example ... add records", when no record could help."""
  f = make_feature([[0.0, 3.0, 0.5], [0.0, 1.0], [2.0, 0.0], [0.0, 0.0]])
  with pytest.raises(UserError) as e:
    data.sample_examples(f, n=10, split="train", seed=0, threshold=3.0)
  assert "no activation is above the threshold 3 (the highest is 3)" in e.value.what
  assert e.value.fix == "lower --threshold below 3"
  with pytest.raises(UserError) as e:
    data.sample_examples(make_feature([[0.5, 3.0], [1.0, 2.0]]), n=10, split="train", seed=0, threshold=0.25)
  assert "every activation is above the threshold 0.25 (the lowest is 0.5)" in e.value.what
  assert e.value.fix == "raise --threshold to at least 0.5"
  assert len(data.sample_examples(f, n=10, split="train", seed=0, threshold=2.5)) == 10  # one token above: still drawn


# ---------------------------------------------------------------------------------------------------------------
# Targets.


def test_binary_targets_with_threshold():
  f = make_feature([[0.0, 3.0, 0.5, -1.0], [1.0]])
  t0, t1 = data.targets(f, "binary")
  np.testing.assert_array_equal(t0, [0, 1, 1, 0])
  np.testing.assert_array_equal(t1, [1])
  t0, _ = data.targets(f, "binary", threshold=0.5)
  np.testing.assert_array_equal(t0, [0, 1, 0, 0])  # strictly above the threshold


def test_continuous_targets():
  f = make_feature([[0.0, 4.0, 1.0, -2.0], [2.0, 0.0]])
  t0, t1 = data.targets(f, "continuous", scale_quantile=1.0)
  np.testing.assert_allclose(t0, [0.0, 1.0, 0.25, 0.0])  # quantile 1: scaled by the max positive activation
  np.testing.assert_allclose(t1, [0.5, 0.0])
  assert t0.dtype == np.float32
  # Quantile 0.5 of the positives (1, 2, 4) is 2: 4 clips to 1, 1 becomes 0.5.
  t0, t1 = data.targets(f, "continuous", scale_quantile=0.5)
  np.testing.assert_allclose(t0, [0.0, 1.0, 0.5, 0.0])
  np.testing.assert_allclose(t1, [1.0, 0.0])
  with pytest.raises(ValueError):
    data.targets(f, "soft")


def test_continuous_targets_follow_the_threshold():
  """Tokens at or below the threshold are negatives in continuous mode too: target 0, whatever their activation."""
  f = make_feature([[0.0, 4.0, 1.0, 0.5], [2.0, 0.0]])
  t0, t1 = data.targets(f, "continuous", threshold=1.0, scale_quantile=1.0)
  np.testing.assert_allclose(t0, [0.0, 1.0, 0.0, 0.0])
  np.testing.assert_allclose(t1, [0.5, 0.0])


def test_continuous_scale_is_robust_to_an_outlier_and_ignores_heldout():
  """One activation of 10 among positives of 0.5-4: the 0.9 quantile stays near the bulk, so the bulk's targets are
  not squashed toward 0 (with the max as scale, 4 would map to 0.4); a held-out record's activations shape nothing."""
  rng = np.random.default_rng(0)
  bulk = rng.uniform(0.5, 4.0, 60).astype(np.float32)
  f = make_feature([np.r_[bulk[:30], 0.0, 0.0], np.r_[bulk[30:], 0.0, 10.0], [0.0, 50.0]],
                   splits=["train", "train", "heldout"])
  scale = data.continuous_scale(f)
  assert scale == pytest.approx(np.quantile(np.r_[bulk, 10.0].astype(np.float64), 0.9))
  assert scale < 4.0
  t = np.concatenate(data.targets(f, "continuous")[:2])
  acts = np.concatenate([r.activations for r in f.records[:2]])
  assert np.median(t[acts > 0]) > 0.5
  assert data.continuous_scale(f, scale_quantile=1.0) == 10.0  # not 50: the held-out record is not looked at


# ---------------------------------------------------------------------------------------------------------------
# Splits.


def random_feature(n_records, seed=0, splits=None):
  rng = np.random.default_rng(seed)
  acts = [np.where(rng.random(6) < 0.3, rng.random(6) * 5, 0.0) for _ in range(n_records)]
  return make_feature(acts, splits)


def test_assign_splits_fraction_and_strata():
  f = random_feature(40)
  s = data.assign_splits(f)
  splits = [r.split for r in s.records]
  has_pos = [bool((r.activations > 0).any()) for r in f.records]
  for group in (True, False):
    g = [sp for sp, h in zip(splits, has_pos) if h == group]
    assert g.count("heldout") == int(np.floor(0.25 * len(g) + 0.5)), group
  assert set(splits) == {"train", "heldout"}


def test_assign_splits_deterministic_and_seeded():
  f = random_feature(40)
  a = [r.split for r in data.assign_splits(f).records]
  assert a == [r.split for r in data.assign_splits(f).records]
  assert a != [r.split for r in data.assign_splits(f, seed=1).records]


def test_assign_splits_stable_under_reorder_and_append():
  f = random_feature(40)
  a = {r.tokens: r.split for r in data.assign_splits(f).records}
  order = list(range(40))
  random.Random(3).shuffle(order)
  shuffled = data.Feature("f", tuple(f.records[i] for i in order))
  assert {r.tokens: r.split for r in data.assign_splits(shuffled).records} == a
  extra = make_feature([[1.0, 0.0]]).records[0]
  extra = data.Record(("new", "text"), extra.activations, None, "mem:41")
  grown = data.assign_splits(data.Feature("f", f.records + (extra,)))
  moved = sum(a[r.tokens] != r.split for r in grown.records[:40])
  assert moved <= 1


def test_assign_splits_keeps_explicit_and_small_groups():
  f = make_feature([[1, 0], [1, 0], [0, 0], [0, 0], [2, 0]], splits=["train", None, None, None, "heldout"])
  s = data.assign_splits(f)
  assert s.records[0].split == "train" and s.records[4].split == "heldout"
  assert s.records[0] is f.records[0]
  # One unsplit record with a positive: too few to split, it trains. Two without: one each way.
  assert s.records[1].split == "train"
  assert sorted([s.records[2].split, s.records[3].split]) == ["heldout", "train"]
  # Extreme fractions still leave each split one record of a group of two or more.
  f = make_feature([[1, 0]] * 3)
  assert [r.split for r in data.assign_splits(f, heldout_fraction=0.1).records].count("heldout") == 1
  assert [r.split for r in data.assign_splits(f, heldout_fraction=0.9).records].count("train") == 1


# ---------------------------------------------------------------------------------------------------------------
# Sampling.


def big_feature():
  """30 records of 20 tokens; record k has positives only when k is even, and near misses in (0, 1]."""
  rng = np.random.default_rng(1)
  acts = []
  for k in range(30):
    a = np.zeros(20)
    if k % 2 == 0:
      a[rng.choice(20, 4, replace=False)] = rng.uniform(2, 5, 4)
    a[rng.choice(np.flatnonzero(a == 0), 2, replace=False)] = rng.uniform(0.1, 1.0, 2)
    acts.append(a)
  return make_feature(acts)


def test_sampling_is_balanced_and_deterministic():
  f = big_feature()
  ex = data.sample_examples(f, n=2000, split="train", seed=0)
  frac = np.mean([e.target for e in ex])
  assert abs(frac - 0.5) < 0.04
  assert ex == data.sample_examples(f, n=2000, split="train", seed=0)
  assert ex != data.sample_examples(f, n=2000, split="train", seed=1)
  ex = data.sample_examples(f, n=2000, split="train", seed=0, positive_fraction=0.2)
  assert abs(np.mean([e.target for e in ex]) - 0.2) < 0.04


def test_sampling_respects_split_and_targets():
  f = big_feature()
  split_of = [r.split for r in data.assign_splits(f).records]
  for split in ("train", "heldout"):
    ex = data.sample_examples(f, n=200, split=split, seed=2)
    assert {split_of[e.record] for e in ex} == {split}
    for e in ex:
      act = f.records[e.record].activations[e.index]
      assert e.target == float(act > 0)
      assert e.token == f.records[e.record].tokens[e.index]


def test_sampling_without_replacement_first():
  f = big_feature()
  ex = data.sample_examples(f, n=60, split="train", seed=4)
  pos = [(e.record, e.index) for e in ex if e.target == 1]
  neg = [(e.record, e.index) for e in ex if e.target == 0]
  assert len(set(pos)) == len(pos) and len(set(neg)) == len(neg)
  n_pos = sum(int((r.activations > 0).sum()) for r in data.assign_splits(f).records if r.split == "train")
  ex = data.sample_examples(f, n=4 * n_pos, split="train", seed=4)
  pos = [(e.record, e.index) for e in ex if e.target == 1]
  assert len(pos) > n_pos and len(set(pos)) == n_pos  # every positive used before any repeats


def test_continuous_sampling_targets():
  f = big_feature()
  scale = data.continuous_scale(data.assign_splits(f))
  ex = data.sample_examples(f, n=100, split="train", seed=0, target_mode="continuous")
  binary = data.sample_examples(f, n=100, split="train", seed=0, target_mode="binary")
  for e, b in zip(ex, binary):
    act = f.records[e.record].activations[e.index]
    assert e.positive == (act > 0) == b.positive == (b.target == 1.0)
    assert e.target == pytest.approx(min(act / scale, 1.0) if act > 0 else 0.0)
  assert [(e.record, e.index) for e in ex] == [(b.record, b.index) for b in binary]  # the mode draws the same tokens


def test_negatives_same_record():
  f = big_feature()
  kw = dict(n=400, split="train", seed=0, threshold=1.5)  # near misses in odd records are not positives
  ex = data.sample_examples(f, negatives="same_record", **kw)
  neg_records = {e.record for e in ex if e.target == 0}
  assert neg_records and all(r % 2 == 0 for r in neg_records)  # only records holding positives
  ex = data.sample_examples(f, negatives="random", **kw)
  assert any(e.record % 2 == 1 for e in ex if e.target == 0)


def test_negatives_near_miss():
  f = big_feature()
  kw = dict(split="train", seed=0, threshold=1.5, positive_fraction=0.0)
  train = [r for r in data.assign_splits(f, threshold=1.5).records if r.split == "train"]
  near = np.sort(np.concatenate([r.activations[(r.activations > 0) & (r.activations <= 1.5)] for r in train]))[::-1]
  ex = data.sample_examples(f, n=len(near) + 10, negatives="near_miss", **kw)
  acts = np.array([f.records[e.record].activations[e.index] for e in ex])
  np.testing.assert_allclose(acts[:len(near)], near)  # strongest near misses first, all of them
  assert (acts[len(near):] == 0).all()  # then the rest
  rand = data.sample_examples(f, n=len(near), negatives="random", **kw)
  assert sum(f.records[e.record].activations[e.index] > 0 for e in rand) < len(near) / 2


def test_coin_flips_do_not_depend_on_negative_mode():
  f = big_feature()
  a = data.sample_examples(f, n=300, split="train", seed=5, negatives="random")
  b = data.sample_examples(f, n=300, split="train", seed=5, negatives="same_record")
  assert [e.target for e in a] == [e.target for e in b]
  assert [e for e in a if e.target == 1] == [e for e in b if e.target == 1]


def test_split_without_positive_is_a_user_error():
  f = make_feature([[1.0, 0.0], [0.0, 0.0]], splits=["train", "heldout"], name="dogs")
  with pytest.raises(UserError) as e:
    data.sample_examples(f, n=10, split="heldout", seed=0)
  assert "'dogs'" in e.value.what and "'heldout'" in e.value.what and "no positive" in e.value.what
  assert "split" in e.value.fix
  # Negatives alone can still be drawn.
  ex = data.sample_examples(f, n=5, split="heldout", seed=0, positive_fraction=0.0)
  assert [e.target for e in ex] == [0.0] * 5


def test_too_few_texts_for_the_automatic_split_say_so():
  """One text with a positive cannot give training and held-out examples; the fix asks for texts, not a split field."""
  f = make_feature([[0.0, 1.0, 0.0]], name="dogs")
  with pytest.raises(UserError) as e:
    data.sample_examples(f, n=10, split="heldout", seed=0)
  assert "'heldout'" in e.value.what and "no positive" in e.value.what
  assert "add more texts" in e.value.fix and "split field" not in e.value.fix
  two = make_feature([[0.0, 1.0, 0.0], [2.0, 0.0]], name="dogs")  # two texts: one goes to each split
  assert any(e.positive for e in data.sample_examples(two, n=10, split="heldout", seed=0))


def test_split_without_negative_is_a_user_error():
  f = make_feature([[1.0, 2.0], [0.0, 1.0]], splits=["heldout", "train"], name="dogs")
  with pytest.raises(UserError) as e:
    data.sample_examples(f, n=10, split="heldout", seed=0)
  assert "'heldout'" in e.value.what and "no negative" in e.value.what


def test_sample_examples_rejects_bad_arguments():
  f = big_feature()
  for kw in (dict(split="test"), dict(negatives="hard"), dict(positive_fraction=1.5), dict(n=-1)):
    args = dict(n=10, split="train", seed=0) | kw
    with pytest.raises(ValueError):
      data.sample_examples(f, **args)


# ---------------------------------------------------------------------------------------------------------------
# Presenting tokens.


def test_context_window_middle_and_ends():
  r = make_feature([[0.0] * 6]).records[0]
  t = r.tokens
  assert data.context_window(r, 3, 2, 1) == (t[1:3], t[3], t[4:5])
  assert data.context_window(r, 0, 3, 2) == ((), t[0], t[1:3])
  assert data.context_window(r, 5, 2, 4) == (t[3:5], t[5], ())
  assert data.context_window(r, 2, 0, 0) == ((), t[2], ())
  assert data.context_window(r, 2, 100, 100) == (t[:2], t[2], t[3:])
  with pytest.raises(IndexError):
    data.context_window(r, 6, 1, 1)


@pytest.mark.parametrize("token, word", [
    (" dog", "dog"), ("\u0120dog", "dog"), ("\u2581dog", "dog"), ("dog\n", "dog"), ("  ing", "ing"),
    ("\u0120", ""), ("a\u0120b", "a\u0120b"), ("\u2581\u2581x", "x"),
])
def test_word_of(token, word):
  assert data.word_of(token) == word


def test_shared_word_share_tells_a_context_feature_from_a_word_feature():
  """The context features' positives and near misses are the same words; a word category's are not. The label
  run's hint to read the context follows this share (labeling.context_hint)."""
  import os  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import discriminators, labeling  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax.splits import Split  # pylint: disable=import-outside-toplevel
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  food = data.load_features(os.path.join(root, "experiments", "data", "context", "food_sense.jsonl"))[0]
  tool = data.load_features(os.path.join(root, "experiments", "data", "concepts", "tool.jsonl"))[0]
  near = data.sample_examples(food, n=64, split="heldout", seed=0, threshold=0.5, negatives="near_miss")
  anyneg = data.sample_examples(food, n=64, split="heldout", seed=0, threshold=0.5, negatives="random")
  words = data.sample_examples(tool, n=64, split="heldout", seed=0)
  assert data.shared_word_share(near) == 1.0
  assert data.shared_word_share(anyneg) < 0.5 and data.shared_word_share(words) < 0.2
  assert data.shared_word_share([e for e in near if not e.positive]) == 0.0  # no positive: nothing shared

  def split(exs):
    return Split(examples=exs, prep=None, target_B=np.array([e.target for e in exs], np.float32))
  hint = labeling.context_hint(discriminators.get("namer"), split(near))
  assert hint.startswith("100%") and "--discriminator=namer_context" in hint
  assert labeling.context_hint(discriminators.get("namer_context"), split(near)) == ""  # it reads the context
  assert labeling.context_hint(discriminators.get("namer"), split(words)) == ""
