"""Choosing the label: typicality among the finalists, two-token namer scores, the chance check, null labels."""

from __future__ import annotations

import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest

import tinymodel
from tokenlabel_jax import baselines
from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import evaluation
from tokenlabel_jax import labeling
from tokenlabel_jax import optimization as opt_lib
from tokenlabel_jax import selection
from tokenlabel_jax import splits as splits_lib

LCFG = opt_lib.LabelConfig(steps=6, seeds=2, batch_size=8, n_train=16, n_val=16, n_heldout=16, top_k=3,
                           vocab_filter="all", checkpoint_every=100)


def _cand(text, loss, typ):
  return selection.Candidate((0,), text, "scan", {"val_loss": loss, "typicality": typ})


def test_choose_prefers_the_typical_label_among_the_finalists_only():
  member, category = _cand(" knife", 0.30, 1.0), _cand(" tool", 0.33, 4.0)
  scfg = selection.SelectConfig(margin=0.05, typical_top=4)
  assert selection.choose([member, category], scfg) == 1
  # Outside the margin, or past the best typical_top, discrimination wins, however typical the other label is.
  assert selection.choose([member, _cand(" tool", 0.40, 9.0)], scfg) == 0
  assert selection.choose([member, category], dataclasses.replace(scfg, margin=0.0)) == 0
  assert selection.choose([member, _cand(" saw", 0.31, 0.0), category], dataclasses.replace(scfg, typical_top=2)) == 0
  # Without typicality measured, the lowest validation loss.
  assert selection.choose([_cand(" a", 0.5, float("nan")), _cand(" b", 0.4, float("nan"))], scfg) == 1


def test_stored_rows_keep_the_best_by_loss_and_every_outside_proposal():
  scan = [selection.Candidate((t,), f" w{t}", "scan", {"val_loss": 1.0 + t}) for t in range(50)]
  late = selection.Candidate((7, 8), " big owl", "explainer", {"val_loss": 99.0})
  early = selection.Candidate((9, 9), " owl", "explainer", {"val_loss": 0.5})
  rows = selection.stored_rows(scan[::-1] + [late, early], top=40)
  assert [r["label"] for r in rows] == [" owl"] + [f" w{t}" for t in range(39)] + [" big owl"]
  assert rows[-1]["token_ids"] == [7, 8] and rows[-1]["val_loss"] == 99.0 and rows[-1]["source"] == "explainer"


def test_runners_up_follow_the_rule_that_chose():
  """The next candidates in the choosing rule's own order, one per word, the label left out: by ask score, by the
  coverage rule's z-summed signals among its best by validation loss, by set-namer score within its margin, else by
  validation loss."""
  def cand(text, loss, **stats):
    return selection.Candidate((len(text),), text, "scan", {"val_loss": loss, **stats})
  cands = [cand(" a", 0.1, ask=-3.0, set_pos=-1.0, lrg=0.0, typ_all=0.0),
           cand(" b", 0.2, ask=-1.0, set_pos=-2.0, lrg=2.0, typ_all=1.0),
           cand(" B", 0.25, ask=-0.5, set_pos=-0.5, lrg=1.0, typ_all=2.0),  # the same word as ' b'
           cand(" c", 0.3, ask=-2.0, set_pos=-0.1, lrg=1.0, typ_all=0.5),
           cand(" d", 0.9, set_pos=-0.2, lrg=9.0, typ_all=9.0)]  # far: no ask score, outside a coverage_top of 4
  base = dataclasses.replace(selection.SelectConfig(), coverage_top=4, coverage_signals=("lrg", "typ_all"))

  def texts(rule, chosen, **kw):
    scfg = dataclasses.replace(base, rule=rule, **kw)
    return [c.text for c in selection.runners_up(cands, cands[chosen], scfg)]
  assert texts("ask", 2) == [" c", " a"]  # ' b' is the label's word
  assert texts("coverage", 1) == [" c", " a"]  # z-sums over a, b, B, c: b and B highest, then c, then a
  assert texts("set_namer", 0, set_margin=0.17) == [" B"]  # within 0.17 of 0.1: a, b, B; by set score
  assert texts("set_namer", 3, set_margin=None) == [" d", " B", " a"]
  assert texts("typicality", 0) == [" b", " c", " d"]  # by validation loss
  plural = [cand(" drinks", 0.1, ask=-1.0), cand(" drink", 0.1, ask=-2.0), cand(" city", 0.1, ask=-3.0),
            cand(" cities", 0.1, ask=-4.0), cand(" juice", 0.1, ask=-5.0)]
  assert [c.text for c in selection.runners_up(plural, plural[0], dataclasses.replace(base, rule="ask"))] == \
      [" city", " juice"]  # a word's plural (or singular) is the word again
  many = [cand(f" w{i}", 0.1 * i, ask=-float(i)) for i in range(9)]
  assert len(selection.runners_up(many, many[0], dataclasses.replace(base, rule="ask"))) == selection.RUNNERS_UP


def test_set_namer_choice_margin_and_answers_first():
  texts = [" food", " bread", " baked", " loaf"]
  loss, set_pos = [0.243, 0.115, 0.160, 0.300], [-0.8, -2.1, -5.5, -1.0]
  answers = ["Bread ", "loaf"]
  assert selection.set_namer_choice(texts, loss, set_pos) == 0  # no margin: the likeliest kind, however far
  assert selection.set_namer_choice(texts, loss, set_pos, margin=0.05) == 1  # ' food' is 0.128 behind
  assert selection.set_namer_choice(texts, loss, set_pos, answers, 0.2, answers_first=True) == 1  # the first answer
  # An answer outside the margin does not compete: the next answer, then the set namer among those near.
  assert selection.set_namer_choice(texts, loss, set_pos, ["loaf", " BREAD"], 0.1, answers_first=True) == 1
  assert selection.set_namer_choice(texts, loss, set_pos, ["loaf"], 0.1, answers_first=True) == 1
  assert selection.set_namer_choice(texts, loss, set_pos, ["loaf"], 0.2, answers_first=True) == 3
  assert selection.set_namer_choice(texts, loss, set_pos, ["cake"], 0.2, answers_first=True) == 0
  # Two candidates with the answer's text (the scan's ' bread' and a proposal ' Bread'): the earlier compared one.
  assert selection.set_namer_choice([" food", " bread", " Bread"], [0.2, 0.2, 0.2], [0.0] * 3, ["bread"], 0.1,
                                    answers_first=True) == 1
  # An answer its validation examples do not show above chance does not win as an answer: the next one does, else
  # the set namer decides (and may still take it on its own score).
  unusable = [True, False, True, True]
  assert selection.set_namer_choice(texts, loss, set_pos, answers, 0.2, True, unusable) == 3
  assert selection.set_namer_choice(texts, loss, set_pos, ["bread"], 0.05, True, unusable) == 1
  assert selection.set_namer_choice(texts, loss, set_pos, ["bread"], 0.1, True, unusable) == 1
  assert selection.set_namer_choice(texts, loss, [-3.0, -0.5, -5.5, -1.0], ["bread", "baked"], 0.1, True,
                                    unusable) == 2
  nan = float("nan")
  assert selection.set_namer_choice(texts, loss, [nan] * 4) == 0  # no set-namer score: the first (best single)
  assert selection.set_namer_choice(texts, loss, [nan, -3.0, nan, nan], margin=0.05) == 1


def test_set_namer_compares_the_best_single_tokens_then_every_proposal():
  lengths, loss = [1, 2, 1, 1, 3, 1], [0.5, 0.1, 0.2, 0.9, 0.8, 0.3]
  sources = ["scan", "explainer", "scan", "scan", "explainer", "explainer"]
  assert selection.compared_by_set_namer(lengths, loss, sources, 2) == [2, 5, 1, 4, 5]
  assert selection.compared_by_set_namer(lengths, loss, ["scan"] * 6, 10) == [2, 5, 0, 3]
  usable = [True, True, False, True, False, True]  # a proposal not above chance is not compared; a single token is
  assert selection.compared_by_set_namer(lengths, loss, sources, 2, usable) == [2, 5, 1, 5]


def test_typicality_prefers_the_label_that_explains_every_positive(tiny):
  """On the tiny model the figure must equal its definition: mean over positive examples of the likelihood ratio
  (a word that occurs twice counts twice, though it is read once)."""
  lik = dataclasses.replace(disc_lib.get("likelihood"), neutral_label="x")
  words = ["cat", "dog", "cat", "owl", "cup"]
  feature = data_lib.Feature("f", tuple(data_lib.Record((" " + w,), np.array([1.0 if w != "cup" else 0.0], np.float32),
                                                        "train", f"f:{i}") for i, w in enumerate(words)))
  exs = [data_lib.Example(i, 0, 1.0 if w != "cup" else 0.0, feature.records[i].tokens) for i, w in enumerate(words)]
  val = splits_lib.Split(exs, None, np.array([e.target for e in exs], np.float32))
  cands = [selection.Candidate((ord("a"),), "a", "scan"), selection.Candidate((ord("b"), ord("c")), "bc", "scan")]
  typ = selection.typicality(tiny, feature, val, cands, lik)
  texts = splits_lib.example_texts(feature, exs[:4], lik)
  one = disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, lik, texts, 1)
  two = disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, dataclasses.replace(lik, neutral_label="xx"), texts, 2)
  raw1 = np.asarray(disc_lib.hard_scores(tiny.params, tiny.cfg, lik, one, jnp.asarray([[ord("a")]]))) 
  raw2 = np.asarray(disc_lib.hard_scores(tiny.params, tiny.cfg, lik, two, jnp.asarray([[ord("b"), ord("c")]])))
  # Both measured against the same one-slot neutral label.
  expect2 = raw2 + np.asarray(two.baseline_B) - np.asarray(one.baseline_B)
  np.testing.assert_allclose(typ, [raw1.mean(), expect2.mean()], rtol=1e-5, atol=1e-5)


def test_auc_lower_bound_separates_chance_from_signal():
  assert selection.auc_lower_bound(0.5, 64, 64) < 0.5
  assert selection.auc_lower_bound(0.62, 16, 16) < 0.5 < selection.auc_lower_bound(0.62, 200, 200)
  assert 0.5 < selection.auc_lower_bound(0.9, 64, 64) < 0.9
  assert np.isnan(selection.auc_lower_bound(0.7, 0, 10))


def test_the_lower_bound_counts_the_independent_scores_a_split_holds():
  """A token drawn again adds no evidence, nor, for a discriminator that reads only the word, another token of the
  same word: Kish's effective count over such clusters, (sum n)^2 / sum n^2."""
  def ex(r, i, pos, word):
    return data_lib.Example(record=r, index=i, target=float(pos), tokens=("x",) * i + (word,))
  # Positives: two tokens of ' dog' (records 0 and 1), each drawn 5 times. Negatives: ten tokens of two words, one
  # drawn 8 times and one twice.
  examples = [ex(0, 1, 1, " dog")] * 5 + [ex(1, 2, 1, " dog")] * 5 + [ex(r, 0, 0, " cup" if r < 8 else " pen")
                                                                       for r in range(10)]
  split = splits_lib.Split(examples, None, np.array([e.target for e in examples], np.float32))
  assert split.effective_counts(by_word=False) == (2.0, 10.0)
  assert split.effective_counts(by_word=True) == (1.0, pytest.approx(100 / 68))
  namer, context = disc_lib.get("namer"), disc_lib.get("namer_context")
  assert selection.split_lower_bound(0.8, split, namer) == selection.auc_lower_bound(0.8, 1.0, 100 / 68)
  assert selection.split_lower_bound(0.8, split, context) == selection.auc_lower_bound(0.8, 2, 10)
  with_context = dataclasses.replace(namer, also=("{context}: {word} is a kind of{label}",))  # one prompt of two
  assert selection.split_lower_bound(0.8, split, with_context) == selection.auc_lower_bound(0.8, 2, 10)
  uneven = splits_lib.Split([ex(0, 1, 1, " a")] * 62 + [ex(1, 1, 1, " b"), ex(2, 1, 1, " c")] + [ex(3, 0, 0, " d")],
                            None, np.array([1.0] * 64 + [0.0], np.float32))
  assert uneven.effective_counts(by_word=False) == (pytest.approx(64 ** 2 / (62 ** 2 + 2)), 1.0)
  by_hand = splits_lib.Split([], None, np.array([1, 1, 0], np.float32))  # no examples: every row counts
  assert by_hand.effective_counts(by_word=True) == (2, 1)
  # A label withheld on such a split says why: one word of positives is too little to tell any label from chance.
  assert labeling.evidence_hint(namer, split).startswith("the held-out positives amount to 1.0 independent words")
  assert "2.0 independent tokens" in labeling.evidence_hint(context, split)
  many = splits_lib.Split([ex(r, 1, 1, f" w{r}") for r in range(8)] + [ex(9, 0, 0, " cup")], None,
                          np.array([1.0] * 8 + [0.0], np.float32))
  assert labeling.evidence_hint(namer, many) == ""


def test_a_label_unrelated_to_a_word_feature_passes_the_chance_check_at_the_nominal_rate():
  """The adoption rule of the word count (experiments/naming/README.md): a word-only discriminator gives every token
  of a word one score, so a label unrelated to the feature is a random score per word. 64 positive tokens of 4 words
  and 64 negative tokens of 8 words, each token once: counting tokens, such a label passed about a third of the
  time; counting words, about the nominal 5%."""
  rng = np.random.default_rng(0)
  pos_words, neg_words = rng.integers(0, 4, 64), 4 + rng.integers(0, 8, 64)
  examples = [data_lib.Example(record=i, index=0, target=float(i < 64), tokens=(f" w{w}",))
              for i, w in enumerate(np.concatenate([pos_words, neg_words]))]
  split = splits_lib.Split(examples, None, np.array([e.target for e in examples], np.float32))
  word_B = np.concatenate([pos_words, neg_words])
  passed = {True: 0, False: 0}
  for _ in range(2000):
    auc = evaluation.roc_auc(rng.normal(size=12)[word_B], split.positive_B)
    for by_word in passed:
      passed[by_word] += selection.auc_lower_bound(auc, *split.effective_counts(by_word)) > 0.5
  assert passed[True] / 2000 < 0.07 and passed[False] / 2000 > 0.15, passed


def test_a_label_on_few_held_out_tokens_gets_their_error_bar(tiny, tmp_path):
  """Three held-out positive tokens of two words (' cat' twice), drawn again and again to fill the split:
  result.json's lower bound is the one of fewer than three independent positives, not of the many repeated draws."""
  path = tmp_path / "few.jsonl"
  with open(path, "w") as f:
    for i in range(60):
      held = i >= 48
      words = [" cup", " pen", " map", " box"]
      acts = [0.0] * 4
      if not held and i % 2 == 0 or held and i in (48, 50, 52):
        words[1], acts[1] = [" cat", " dog", " cow", " owl"][i % 4], 1.0
      f.write(json.dumps({"tokens": words, "activations": acts, "split": "heldout" if held else "train"}) + "\n")
  feature = data_lib.load_features(str(path))[0]
  r = labeling.label_feature(tiny, feature, disc_lib.get("namer"), LCFG, str(tmp_path / "out"))
  sp = labeling.build_splits(tiny, feature, disc_lib.get("namer"), LCFG, keep_cache=False, prepare_train=False)
  n_pos, n_neg = sp["heldout"].effective_counts(by_word=True)
  assert n_pos < 3 and int(sp["heldout"].positive_B.sum()) > n_pos  # three words drawn with repeats
  assert r["heldout_auc_lower95"] == pytest.approx(selection.auc_lower_bound(r["heldout"]["auc"], n_pos, n_neg))
  # On under two independent positive words the label is withheld here, and the result says why.
  assert r["label"] is None and "independent words, too few to tell a label from chance" in r["hint"]


@pytest.fixture(scope="module")
def tiny():
  return tinymodel.tiny_model()


def _prepared(tiny, words):
  disc = disc_lib.get("namer")
  exs = [disc_lib.ExampleText(word=w, context=w) for w in words]
  return disc, disc_lib.prepare(tiny.params, tiny.cfg, tiny.tokenizer, disc, exs)


def test_namer_scores_of_two_token_labels_match_the_teacher_forced_model(tiny):
  """The batched continuation path (one model step per first token) against the discriminator's own scorer."""
  disc, prep = _prepared(tiny, ["cat", "dog", "owl", "a cup", "pen"])
  enc = tiny.tokenizer.encode
  ids = [tuple(enc(w)) for w in (" o", " a", "ab", "xy")] + [tuple(enc(" "))]
  assert [len(i) for i in ids] == [2, 2, 2, 2, 1]
  ids = ids[:4]
  ours = disc_lib.namer_scores(tiny.params, tiny.cfg, prep, ids)
  ref = np.asarray(disc_lib.hard_scores(tiny.params, tiny.cfg, disc, prep, jnp.asarray(ids, jnp.int32)))
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
  # On one or two prompts (the chat question) every longer label is teacher-forced in one batched pass instead.
  for rows in ([0], [1, 3]):
    sub = disc_lib.take_rows(prep, jnp.asarray(rows))
    mixed = ids + [tuple(enc("abc")), tuple(enc(" "))]
    got = disc_lib.namer_scores(tiny.params, tiny.cfg, sub, mixed)
    for label, row in zip(mixed, got):
      one = np.asarray(disc_lib.hard_scores(tiny.params, tiny.cfg, disc, sub, jnp.asarray([label], jnp.int32)))[0]
      np.testing.assert_allclose(row, one, rtol=1e-5, atol=1e-5)


def test_extension_candidates_carry_their_exact_validation_scores(tiny):
  disc, prep = _prepared(tiny, ["cat", "dog", "owl", "cup", "pen", "map"])
  val = splits_lib.Split([], prep, np.array([1, 1, 1, 0, 0, 0], np.float32))
  mask = np.zeros(tiny.cfg.vocab_size, bool)
  mask[[ord(c) for c in "abcdefghij"]] = True  # byte-level ids of plain letters
  scfg = selection.SelectConfig(scan_top=4, natural_top=2, extend_top=3, extend_each=2)
  cands = selection.gather(tiny, disc, val, mask, [], scfg)
  ext = [c for c in cands if c.source == "extension"]
  assert ext and all(len(c.ids) == 2 for c in ext)
  want = disc_lib.namer_scores(tiny.params, tiny.cfg, prep, [c.ids for c in ext])
  np.testing.assert_allclose(np.stack([c.s_val for c in ext]), want, rtol=1e-5, atol=1e-5)
  # The scan keeps the tokens with the lowest calibrated validation loss among the allowed ones.
  singles = [c for c in cands if c.source == "scan"]
  assert all(mask[c.ids[0]] for c in singles) and len(singles) == 4


def _write_noise_feature(path, n=60, seed=0):
  """Activations independent of the tokens: no label can beat chance."""
  rng = np.random.default_rng(seed)
  words = ["cat", "dog", "cow", "owl", "cup", "pen", "map", "box"]
  with open(path, "w") as f:
    for _ in range(n):
      toks = [" " + str(rng.choice(words)) for _ in range(5)]
      f.write(json.dumps({"tokens": toks, "activations": [float(rng.random() < 0.5) for _ in toks]}) + "\n")
  return path


def test_a_label_at_chance_is_reported_as_no_label(tiny, tmp_path):
  feature = data_lib.load_features(_write_noise_feature(tmp_path / "noise.jsonl"))[0]
  r = labeling.label_feature(tiny, feature, disc_lib.get("namer"), LCFG, str(tmp_path / "out"))
  assert r["label"] is None and r["label_status"] == "not above chance"
  assert isinstance(r["best_candidate"], str) and r["heldout_auc_lower95"] <= 0.5
  on_disk = json.load(open(tmp_path / "out" / "result.json"))
  assert on_disk["label"] is None and on_disk["best_candidate"] == r["best_candidate"]


def test_independent_scorer_scores_the_chosen_label_on_the_same_heldout_examples(tiny, tmp_path):
  feature = data_lib.load_features(_write_noise_feature(tmp_path / "f.jsonl", seed=1))[0]
  lik = dataclasses.replace(disc_lib.get("likelihood"), neutral_label="x")  # one token for the byte tokenizer
  r = labeling.label_features(tiny, [feature], disc_lib.get("namer"), LCFG, str(tmp_path / "out"), ["cat"],
                              scorer=lik)[0]
  s = r["scorer"]
  assert s["discriminator"] == "likelihood" and set(s) == {"discriminator", "label", "cat", "baselines"}
  # The same figure computed directly with the scorer on the held-out examples the namer was scored on.
  sp = labeling.build_splits(tiny, feature, lik, dataclasses.replace(LCFG, n_train=0))
  namer_sp = labeling.build_splits(tiny, feature, disc_lib.get("namer"), LCFG)
  assert [(e.record, e.index) for e in sp["heldout"].examples] == \
      [(e.record, e.index) for e in namer_sp["heldout"].examples]
  direct = splits_lib.evaluate_labels(tiny, lik, [r["token_ids"]], sp["val"], sp["heldout"])[0]
  assert s["label"]["auc"] == pytest.approx(direct["auc"])
  # The baselines too, under the scorer: the same words as under the namer, each with its own direct figure.
  base = baselines.labels(tiny, feature, LCFG.threshold, LCFG.seed, True)  # "cat" keeps the prompts' caches
  assert {k: v["label"] for k, v in s["baselines"].items()} == {k: v["label"] for k, v in r["baselines"].items()} \
      == {k: text for k, (text, _) in base.items()}
  rows = splits_lib.evaluate_labels(tiny, lik, [ids for _, ids in base.values()], sp["val"], sp["heldout"])
  assert [s["baselines"][k]["auc"] for k in base] == pytest.approx([row["auc"] for row in rows])
  assert len({round(row["auc"], 6) for row in rows + [direct]}) > 1  # distinct figures: a mis-slice would show


def test_references_per_feature_are_scored_on_each_features_own_examples(tiny, tmp_path):
  """A baseline that differs by feature (its top-activating token) is scored beside that feature's label only, with
  the figures a direct evaluation on the same validation / held-out examples gives."""
  feats = [dataclasses.replace(data_lib.load_features(_write_noise_feature(tmp_path / f"{n}.jsonl", seed=s))[0], name=n)
           for n, s in (("a", 2), ("b", 3))]
  refs = {"a": ["cat", "dog"], "b": ["owl"]}
  namer = disc_lib.get("namer")
  results = labeling.label_features(tiny, feats, namer, LCFG, str(tmp_path / "out"), refs)
  for f, r in zip(feats, results):
    assert set(r["references"]) == set(refs[f.name])
    sp = labeling.build_splits(tiny, f, namer, LCFG)
    rows = splits_lib.evaluate_labels(tiny, namer, [disc_lib.encode_label(tiny.tokenizer, w) for w in refs[f.name]],
                                    sp["val"], sp["heldout"])
    for w, row in zip(refs[f.name], rows):
      assert r["references"][w]["auc"] == pytest.approx(row["auc"])
      assert r["references"][w]["val_loss"] == pytest.approx(row["val_loss"], rel=1e-5)


def test_scan_prefilter_keeps_the_tokens_with_the_best_calibrated_loss():
  """Only the prefiltered tokens get a calibration fit: the best by calibrated loss must all be among them."""
  rng = np.random.default_rng(0)
  B, V = 64, 600
  pos = np.arange(B) < B // 2
  signal = rng.uniform(0, 3, V) * (rng.random(V) < 0.2)  # a fifth of the tokens separate, by varying amounts
  logq = rng.normal(size=(B, V)).astype(np.float32) + np.where(pos[:, None], signal[None], 0.0).astype(np.float32)
  mask = rng.random(V) < 0.9
  auc = np.nan_to_num(evaluation.vocab_auc(logq, pos, mask), nan=0.0)
  keep = selection.prefilter(logq, pos, auc, mask, 96)
  assert mask[keep].all() and len(keep) < mask.sum()
  loss = np.full(V, np.inf)
  loss[mask] = opt_lib.fit_calibration(logq[:, mask].T, pos.astype(np.float32), 1.0)[2]
  assert set(np.argsort(loss)[:24]) <= set(keep.tolist())
  assert set(selection.prefilter(logq, pos, auc, mask, 0).tolist()) == set(np.flatnonzero(mask).tolist())


def test_the_rule_follows_the_model_size():
  from tokenlabel_jax.config import ModelConfig
  assert selection.default_rule(ModelConfig.smollm2_135m()) == "coverage"
  assert selection.default_rule(ModelConfig.qwen25_coder_0_5b()) == "coverage"
  # 1B parameters and more: the ask rule (the fresh set), unless the model cannot be asked in a chat format or the
  # explainer proposes (its settings were chosen for the set namer rule).
  big = ModelConfig.qwen25_coder_1_5b()
  assert selection.default_rule(big) == "ask"
  assert selection.default_rule(big, chat=False) == selection.default_rule(big, propose_with="explainer") == "set_namer"
  assert selection.for_model(selection.SelectConfig(), big).rule == "ask"
  assert selection.for_model(selection.SelectConfig(), big, chat=False).rule == "set_namer"
  assert selection.for_model(selection.SelectConfig(), ModelConfig.tiny()).rule == "coverage"
  assert selection.for_model(selection.SelectConfig(rule="typicality"), ModelConfig.qwen25_coder_1_5b()).rule == \
      "typicality"
  with pytest.raises(selection.UserError):
    selection.for_model(selection.SelectConfig(rule="best"), ModelConfig.tiny())


@pytest.mark.parametrize("field, value, flag", [("margin", -1.0, "--select_margin"),
                                                ("ask_margin", float("nan"), "--select_ask_margin"),
                                                ("extend_top", -1, "--extend_top"), ("typical_top", 0, None)])
def test_select_config_refuses_a_margin_or_count_without_finalists(field, value, flag):
  with pytest.raises(selection.UserError) as e:
    selection.SelectConfig(**{field: value})
  assert e.value.what.startswith(f"{field}=") and (flag is None or flag in e.value.fix)
  selection.SelectConfig(margin=0.0, set_margin=None, extend_top=0)  # the smallest allowed settings stay allowed


def test_the_combination_gets_its_measured_set_namer_settings(monkeypatch):
  from tokenlabel_jax.config import ModelConfig
  cfg = ModelConfig.qwen25_coder_1_5b()
  monkeypatch.setattr(selection, "COMBINATION", {"set_margin": 0.1, "answers_first": True,
                                                 "answers_above_chance": True})
  both = selection.for_model(selection.SelectConfig(propose_with="explainer"), cfg)
  assert (both.rule, both.set_margin, both.answers_first, both.answers_above_chance) == ("set_namer", 0.1, True, True)
  alone = selection.for_model(selection.SelectConfig(), cfg)
  assert (alone.set_margin, alone.answers_first, alone.answers_above_chance) == (None, False, False)
  mine = selection.for_model(selection.SelectConfig(propose_with="explainer", set_margin=0.3, answers_first=False), cfg)
  assert (mine.set_margin, mine.answers_first) == (0.3, False)
  assert selection.for_model(both, cfg) == both  # filled once, kept


def test_set_namer_rule_picks_the_likeliest_kind_of_the_positive_sets(tiny, tmp_path):
  """Among the best `coverage_top` candidates by validation loss, the highest mean log P(label | "w1, w2, w3 and w4
  are kinds of") over sets of positive training words, recomputed here from the model directly; the run reads no
  training prompts (its training Split has no prep)."""
  from tokenlabel_jax import coverage, model as model_lib
  rng = np.random.default_rng(0)
  animals, things = ["cat", "dog", "cow", "owl", "fox", "pig", "hen", "elk"], ["cup", "pen", "map", "box", "mug"]
  with open(tmp_path / "toy.jsonl", "w") as f:
    for i in range(80):
      words, acts = [str(rng.choice(things)) for _ in range(4)], [0.0] * 4
      if i % 2 == 0:
        words[1], acts[1] = animals[(i // 2) % len(animals)], 1.0
      f.write(json.dumps({"tokens": [words[0]] + [" " + w for w in words[1:]], "activations": acts}) + "\n")
  feature = data_lib.load_features(str(tmp_path / "toy.jsonl"))[0]
  disc = disc_lib.get("namer")
  lcfg = dataclasses.replace(LCFG, steps=0)
  scfg = selection.SelectConfig(rule="set_namer", coverage_top=6)
  assert not labeling.uses_train_prompts(lcfg, scfg) and labeling.uses_train_prompts(LCFG, scfg)
  assert not labeling.uses_train_prompts(lcfg, dataclasses.replace(scfg, rule="ask"))
  assert labeling.uses_train_prompts(lcfg, dataclasses.replace(scfg, rule="coverage"))
  sp = labeling.build_splits(tiny, feature, disc, lcfg, keep_cache=False, prepare_train=False)
  assert sp["train"].prep is None and sp["val"].prep is not None
  mask = labeling.allowed_tokens(tiny, lcfg)
  cands = selection.gather(tiny, disc, sp["val"], mask, [], scfg)
  chosen = selection.choose_label(tiny, disc, feature, lcfg, sp, None, cands, mask, scfg)
  top = sorted((c for c in cands if len(c.ids) == 1), key=lambda c: c.stats["val_loss"])[:6]
  assert chosen in top and all("set_pos" in c.stats for c in top)
  sets = coverage.word_sets(coverage.positive_words(feature), scfg.set_sets, 0)
  assert sets
  expected = []
  for c in top:  # log P(label | shots + set) straight from the forward, set by set
    lp = []
    for s in sets:
      ids = tiny.tokenizer.encode(coverage.SET_SHOTS + ", ".join(s[:-1]) + " and " + s[-1] + " are kinds of")
      logits, _ = model_lib.forward_tokens(tiny.params, tiny.cfg, jnp.asarray([ids]))
      lp.append(float(np.asarray(jax_log_softmax(logits[0, -1]))[c.ids[0]]))
    expected.append(np.mean(lp))
  np.testing.assert_allclose([c.stats["set_pos"] for c in top], expected, atol=2e-4)
  assert chosen is top[int(np.argmax(expected))]


def jax_log_softmax(x):
  import jax
  return jax.nn.log_softmax(x)


def test_a_label_answered_less_for_positives_scores_below_chance():
  """The judge is not calibrated by a capped scale: its fitted scale must still not go negative, or a label the
  judge answers *no* for the feature's tokens would be read backwards and get a mirrored held-out AUC above 0.5."""
  rng = np.random.default_rng(0)
  t_val, t_test = (rng.random(64) < 0.5).astype(np.float32), (rng.random(64) < 0.5).astype(np.float32)
  s_val, s_test = -2 * t_val + rng.normal(size=64), -2 * t_test + rng.normal(size=64)
  val, test = splits_lib.Split([], None, t_val), splits_lib.Split([], None, t_test)
  row = splits_lib.rows_from_scores(disc_lib.get("judge"), s_val[None], s_test[None], val, test)[0]
  assert row["val_auc"] < 0.2
  assert row["auc"] == pytest.approx(evaluation.roc_auc(s_test, t_test > 0.5)) and row["auc"] < 0.2
  a, _, _ = opt_lib.fit_calibration(s_val[None], t_val, max_scale=None)
  assert a[0] >= 0


def test_heldout_auc_is_ranked_on_the_logit_where_the_probability_saturates():
  """A confident discriminator (large fitted scale) puts held-out logits past where sigmoid rounds to 1 in float32;
  the AUC must still rank them."""
  t_val = np.array([0, 0, 0, 0, 1, 1, 1, 1], np.float32)
  s_val = np.array([-9, -8, -7, -6, 6, 7, 8, 9], np.float32)
  s_test = np.array([20, 21, 22, 23, 24, 25], np.float32)
  t_test = np.array([0, 1, 0, 1, 0, 1], np.float32)
  val, test = splits_lib.Split([], None, t_val), splits_lib.Split([], None, t_test)
  row = splits_lib.rows_from_scores(disc_lib.get("judge"), s_val[None], s_test[None], val, test)[0]
  assert row["auc"] == pytest.approx(evaluation.roc_auc(s_test, t_test > 0.5))  # 2/3, not the 1/2 of six ties
  assert row["accuracy"] == pytest.approx(0.5)


def test_auc_lower_bound_is_not_fooled_by_few_positives():
  """Hanley & McNeil's standard error vanishes as the AUC nears 1: with one positive token among 32 negatives, an AUC
  of 0.95 (that token ranked second of 33, which chance does 6% of the time) must not count as above chance."""
  assert selection.auc_lower_bound(0.95, 1, 32, chance_floor=False) > 0.6  # the unfloored formula is fooled
  assert selection.auc_lower_bound(0.95, 1, 32) < 0.5
  assert selection.auc_lower_bound(1.0, 1, 32) > 0.5  # ranked first of 33: 3% by chance
  assert selection.auc_lower_bound(0.97, 2, 32) > 0.5 > selection.auc_lower_bound(0.8, 2, 32)
  # The floor only ever widens the bound, and barely where the positives are many and the AUC is near chance's.
  for auc in (0.55, 0.7, 0.9):
    assert selection.auc_lower_bound(auc, 64, 64) <= selection.auc_lower_bound(auc, 64, 64, chance_floor=False)
  assert selection.auc_lower_bound(0.6, 64, 64) == pytest.approx(
      selection.auc_lower_bound(0.6, 64, 64, chance_floor=False), abs=0.01)
