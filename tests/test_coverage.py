"""The coverage rule's signals against their definitions, its choice, and a labeling run that uses it."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import tinymodel
from test_labeling import LCFG, write_feature
from tokenlabel_jax import coverage
from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import labeling
from tokenlabel_jax import model as model_lib
from tokenlabel_jax import selection
from tokenlabel_jax.errors import UserError


@pytest.fixture(scope="module")
def tiny():
  return tinymodel.tiny_model()


def test_log_rank_gap_matches_ranks_counted_by_hand():
  rng = np.random.default_rng(0)
  logq = rng.normal(size=(6, 9)).astype(np.float32)
  logq[:3, 4] = 10.0  # token 4 is first after every positive, last after every negative
  logq[3:, 4] = -10.0
  pos = np.array([1, 1, 1, 0, 0, 0], bool)
  mask = np.ones(9, bool)
  mask[7] = False
  gap = coverage.log_rank_gap(logq, pos, mask)
  allowed = np.flatnonzero(mask)
  for t in allowed:
    rank = np.array([(logq[b, allowed] > logq[b, t]).sum() for b in range(6)])
    want = np.log1p(rank[~pos]).mean() - np.log1p(rank[pos]).mean()
    np.testing.assert_allclose(gap[t], want, rtol=1e-5, atol=1e-6)
  assert gap[7] == -np.inf and int(np.argmax(gap)) == 4 and gap[4] == pytest.approx(np.log(8))


def test_set_namer_reads_each_prompt_at_its_own_last_token(tiny):
  """Right padding to a common width must not change any set's distribution (each run alone, unpadded, is the
  reference)."""
  sets = [["cat", "dog", "cow", "owl"], ["a", "b", "c", "d"], ["penguin", "ox", "yak", "emu"]]
  got = coverage.set_namer(tiny, sets)
  want = []
  for s in sets:
    ids = tiny.tokenizer.encode(coverage.SET_SHOTS + ", ".join(s[:-1]) + " and " + s[-1] + " are kinds of")
    logits, _ = model_lib.forward_tokens(tiny.params, tiny.cfg, np.asarray([ids], np.int32))
    want.append(np.asarray(jax.nn.log_softmax(logits[0, -1])))
  np.testing.assert_allclose(got, np.mean(want, 0), rtol=1e-4, atol=1e-4)
  assert np.isnan(coverage.set_namer(tiny, [])).all()


def test_positive_words_and_sets():
  feature = data_lib.Feature("f", (
      data_lib.Record((" Cat", " cup", "3"), np.array([1.0, 0.0, 2.0], np.float32), "train", "a"),
      data_lib.Record((" dog",), np.array([0.5], np.float32), "train", "b"),
      data_lib.Record((" owl",), np.array([1.0], np.float32), "heldout", "c")))
  assert coverage.positive_words(feature) == ["cat", "dog"]  # no digits, no held-out words, no negatives
  assert coverage.positive_words(feature, threshold=0.7) == ["cat"]
  marked = data_lib.Feature("m", (data_lib.Record(("\u0120dog", "\u2581Cat", "\u0120"), np.ones(3, np.float32), "train",
                                                  "a"),))
  assert coverage.positive_words(marked) == ["cat", "dog"]  # tokens as GPT-2 and SentencePiece store them (was:
                                                            # ['ġdog'], the SentencePiece word dropped)
  sets = coverage.word_sets(["a", "b", "c", "d", "e"], 5, seed=0)
  assert len(sets) == 5 and all(len(set(s)) == 4 for s in sets)
  assert coverage.word_sets(["a", "b", "c"], 5, seed=0) == []


def test_coverage_choice_sums_z_scores_among_the_best_by_loss_only():
  loss = np.array([0.30, 0.31, 0.32, 0.90])
  signals = {"a": np.array([0.0, 1.0, 0.5, 9.0]), "b": np.array([0.0, 2.0, 3.0, 9.0])}
  # Among the best 3 by loss: z(a) + z(b) is highest for index 1 (a: +1.22, b: +0.16) vs 2 (a: 0, b: +1.07).
  assert coverage.coverage_choice(loss, signals, top=3) == 1
  assert coverage.coverage_choice(loss, signals, top=4) == 3  # the outsized one wins once it is compared
  assert coverage.coverage_choice(loss, {"a": np.array([0.0, 1.0, 5.0, 9.0])}, top=3) == 2


def test_labeling_with_the_coverage_rule_records_its_signals(tiny, tmp_path):
  feature = data_lib.load_features(write_feature(tmp_path / "toy.jsonl"))[0]
  scfg = dataclasses.replace(selection.SelectConfig(), rule="coverage", coverage_pool=6, coverage_top=8)
  r = labeling.label_features(tiny, [feature], disc_lib.get("namer"), LCFG, str(tmp_path / "out"), scfg=scfg,
                              plots=False)[0]
  compared = [v for v in r["verification"] if "lrg" in v]
  assert 1 <= len(compared) <= 6 + 8
  assert all(np.isfinite(v["lrg"]) and np.isfinite(v["typ_all"]) for v in compared)
  # The chosen label is the coverage choice over the compared rows, recomputed here from what result.json holds.
  loss = np.array([v["val_loss"] for v in compared])
  signals = {k: np.array([v[k] for v in compared]) for k in ("lrg", "typ_all", "set_pos")}
  assert compared[coverage.coverage_choice(loss, signals, 8)]["token_ids"] == r["token_ids"]
  assert set(r["validation"]) >= {"lrg", "typ_all", "set_pos"}
  # The stored log-rank gaps are those of the feature's own training + validation examples.
  sp = labeling.build_splits(tiny, feature, disc_lib.get("namer"), LCFG)
  logq = np.concatenate([np.asarray(sp[s].prep.logq_BxV) for s in ("train", "val")])
  gap = coverage.log_rank_gap(logq, np.concatenate([sp[s].positive_B for s in ("train", "val")]),
                              np.ones(tiny.cfg.vocab_size, bool))
  np.testing.assert_allclose([v["lrg"] for v in compared], gap[[v["token_ids"][0] for v in compared]], rtol=1e-5)


def test_labeling_takes_the_label_the_coverage_choice_names(tiny, tmp_path, monkeypatch):
  """Wiring: whichever compared candidate the choice returns is the label (here the second best by validation
  loss)."""
  feature = data_lib.load_features(write_feature(tmp_path / "toy.jsonl"))[0]
  scfg = dataclasses.replace(selection.SelectConfig(), rule="coverage", coverage_pool=6, coverage_top=8)
  monkeypatch.setattr(coverage, "coverage_choice", lambda loss, signals, top: int(np.argsort(loss, kind="stable")[1]))
  r = labeling.label_features(tiny, [feature], disc_lib.get("namer"), LCFG, str(tmp_path / "out"), scfg=scfg,
                              plots=False, resume=False)[0]
  compared = [v for v in r["verification"] if "lrg" in v]
  assert r["token_ids"] == sorted(compared, key=lambda v: v["val_loss"])[1]["token_ids"]


def test_ask_scores_are_the_answers_log_probability_after_the_chat_question():
  """Against a full forward of question + answer, each label's better spelling (lower-case or capitalized, no
  leading space), with and without the answer's end; the scores share one constant, so differences are compared."""
  tiny = tinymodel.tiny_model(max_seq_len=512)  # a worked example makes the question longer than the fixture's context
  words, labels = ["cat", "dog", "owl"], [" animal", " Bird", "x"]
  end = coverage.answer_end(tiny.tokenizer)
  assert tiny.tokenizer.token_str(end) == "\n"  # the test template ends an answer with a newline

  def reference(tail, question):
    """Every label's two spellings in one causal forward, right-padded (padding cannot reach earlier positions)."""
    answers = [tiny.tokenizer.encode(f(label.strip())) + tail for label in labels for f in (str.lower, str.capitalize)]
    width = len(question) + max(map(len, answers))
    batch = np.asarray([question + a + [0] * (width - len(question) - len(a)) for a in answers], np.int32)
    logp = np.asarray(jax.nn.log_softmax(model_lib.forward_tokens(tiny.params, tiny.cfg, batch)[0], axis=-1))
    forms = [sum(logp[b, len(question) - 1 + j, t] for j, t in enumerate(a)) for b, a in enumerate(answers)]
    want = np.max(np.reshape(forms, (len(labels), 2)), axis=1)
    return want - want[0]

  shots = [(["brie", "feta"], "Cheese")]
  for kw, cases in (({}, ((False, []), (True, [end]))), ({"shots": shots, "extra": "Be specific."}, ((True, [end]),))):
    question = tiny.tokenizer.encode(coverage.ask_prompt(tiny.tokenizer, words, **kw))
    for with_end, tail in cases:
      got = coverage.ask_scores(tiny, words, labels, end=with_end, **kw)
      np.testing.assert_allclose(got - got[0], reference(tail, question), rtol=1e-4, atol=2e-4)
  assert "cat, dog, owl" in coverage.ask_prompt(tiny.tokenizer, words)
  assert "Choose from: a, b." in coverage.ask_prompt(tiny.tokenizer, words, ["b", "a"])


def test_ask_prompt_asks_the_worked_examples_in_earlier_turns(tiny):
  """Each (words, answer) pair is a user turn with the same question and an assistant turn with the answer; the
  extra sentence follows the question in every turn."""
  def question(words):
    return (f"These words are all examples of one category: {words}.\nWhat is the name of that category? "
            "Be specific.\nAnswer with one word.")
  want = tiny.tokenizer.chat([{"role": "user", "content": question("brie, feta")},
                              {"role": "assistant", "content": "Cheese"},
                              {"role": "user", "content": question("cat, dog")}])
  got = coverage.ask_prompt(tiny.tokenizer, ["cat", "dog"], shots=[(["brie", "feta"], "Cheese")], extra="Be specific.")
  assert got == want


def test_ask_scores_any_spelling_sums_the_distinct_spellings(tiny, monkeypatch):
  """any_spelling: log of the summed probabilities of "w", "W", " w", " W" as the whole answer with its end, each
  spelling counted once (a word without case has two), against one full forward per spelling; the spellings scored
  are those (on this random model a leading space costs 9 nats, so the sum alone would not show one left out)."""
  words, labels = ["cat", "dog", "owl"], [" animal", "Bird", "7"]
  end = coverage.answer_end(tiny.tokenizer)
  question = tiny.tokenizer.encode(coverage.ask_prompt(tiny.tokenizer, words))
  spelled = [sorted({s + f(w.strip()) for f in (str.lower, str.capitalize) for s in ("", " ")}) for w in labels]
  assert [len(fs) for fs in spelled] == [4, 4, 2]
  answers = [tiny.tokenizer.encode(f) + [end] for fs in spelled for f in fs]
  width = len(question) + max(map(len, answers))
  batch = np.asarray([question + a + [0] * (width - len(question) - len(a)) for a in answers], np.int32)
  logp = np.asarray(jax.nn.log_softmax(model_lib.forward_tokens(tiny.params, tiny.cfg, batch)[0], axis=-1))
  forms = [sum(logp[b, len(question) - 1 + j, t] for j, t in enumerate(a)) for b, a in enumerate(answers)]
  want = np.asarray([np.logaddexp.reduce(forms[:4]), np.logaddexp.reduce(forms[4:8]), np.logaddexp.reduce(forms[8:])])
  got = coverage.ask_scores(tiny, words, labels, end=True, any_spelling=True)
  np.testing.assert_allclose(got - got[0], want - want[0], rtol=1e-4, atol=2e-4)
  seen = []
  real = coverage.namer_scores
  monkeypatch.setattr(coverage, "namer_scores", lambda *a: seen.extend(a[-1]) or real(*a))
  coverage.ask_scores(tiny, words, labels, end=True, any_spelling=True)
  assert sorted(seen) == sorted(tuple(a) for a in answers)
  with pytest.raises(ValueError):
    coverage.ask_scores(tiny, words, labels, any_spelling=True, best_only=True)


def test_ask_scores_best_only_runs_what_can_win_and_scores_it_exactly(tiny, monkeypatch):
  """best_only=k: the k likeliest labels are those of the full scoring, in its order, with its scores; a label left
  out (NaN) is less likely than the k-th, one that ran scores at most its full score; with one form a batch, most are
  left out, and more are run for k = 3 than for k = 1."""
  words = ["cat", "dog", "owl"]
  labels = [" " + w for w in ("animal", "bird", "x", "qq", "stone", "zebra", "a", "cup", "owl", "the")]
  letters = [" " + c for c in "abcxqzot"]  # one token in either spelling: without the end a whole answer is its first
  ran_count = {}
  for labels, end, rows in ((labels, True, 16), (labels, True, 1), (letters, False, 1)):
    monkeypatch.setattr(coverage, "BOUND_ROWS", rows)
    full = coverage.ask_scores(tiny, words, labels, end=end)
    for k in (1, 3):
      got = coverage.ask_scores(tiny, words, labels, end=end, best_only=k)
      ran = np.isfinite(got)
      top = np.argsort(-full)[:k]
      assert list(np.argsort(-np.where(ran, got, -np.inf))[:k]) == list(top)
      np.testing.assert_allclose(got[top], full[top], rtol=1e-5, atol=1e-5)
      assert (got[ran] <= full[ran] + 1e-5).all()
      assert (full[~ran] < full[top[-1]]).all()
      ran_count[k] = ran.sum()
  assert ran_count[1] < min(ran_count[3], len(letters) / 2)  # one form at a time, each first token a bound


def test_ask_words_one_per_word_and_ask_choice():
  feature = data_lib.Feature("f", tuple(
      data_lib.Record((" " + w,), np.array([1.0], np.float32), "train", w) for w in "abcdefghijklmnop"))
  words = coverage.ask_words(feature, n=12)
  assert len(words) == 12 and words == sorted(words) and set(words) < set("abcdefghijklmnop")
  assert words == coverage.ask_words(feature, n=12)  # seed 0: the same words every run
  assert coverage.ask_words(feature, n=20) == list("abcdefghijklmnop")
  texts, loss = [" Tool", " knife", " tool", "tool", " saw"], [0.30, 0.10, 0.20, 0.25, 0.50]
  assert coverage.one_per_word(texts, loss) == [1, 2, 4]  # ' tool' kept: the better of the three spellings
  ask = [-1.0, -5.0, -0.5, np.nan, -0.1]
  assert coverage.ask_choice(loss, ask, margin=0.2) == 2  # ' saw' asks best but is 0.4 behind
  assert coverage.ask_choice(loss, ask, margin=0.5) == 4
  assert coverage.ask_choice(loss, ask, margin=0.05) == 1  # only the best by loss is near
  assert coverage.ask_choice(loss, [np.nan] * 5, margin=0.5) == 1  # no ask score: the lowest validation loss


def test_labeling_with_the_ask_rule_takes_the_choice_over_what_result_json_stores(tiny, tmp_path):
  feature = data_lib.load_features(write_feature(tmp_path / "toy.jsonl"))[0]
  scfg = dataclasses.replace(selection.SelectConfig(), rule="ask", ask_margin=5.0, coverage_top=8)
  lcfg = dataclasses.replace(LCFG, steps=0)  # the namer's default, the scan: no training prompts are prepared
  assert not labeling.uses_train_prompts(lcfg, scfg)
  r = labeling.label_features(tiny, [feature], disc_lib.get("namer"), lcfg, str(tmp_path / "out"), scfg=scfg,
                              plots=False)[0]
  asked = [v for v in r["verification"] if "ask" in v]  # scored; the rest were bounded out (best_only)
  every = [v for v in r["verification"] if "ask" in v or "ask_bounded" in v]
  assert 2 <= len(every) <= 8 and len(asked) >= 1 and all(len(v["token_ids"]) == 1 for v in every)
  assert len({v["label"].strip().lower() for v in every}) == len(every)  # one per word
  i = coverage.ask_choice([v["val_loss"] for v in asked], [v["ask"] for v in asked], 5.0)
  assert asked[i]["token_ids"] == r["token_ids"]
  # Every candidate asked about, scored in full: the chosen one is the likeliest answer (the answer's end included),
  # and the stored scores are the chat question's.
  words = coverage.ask_words(feature, LCFG.threshold)
  again = coverage.ask_scores(tiny, words, [v["label"] for v in every], end=True)
  assert every[int(np.argmax(again))]["token_ids"] == r["token_ids"]
  k = every.index(asked[0])
  for v in asked:
    np.testing.assert_allclose(again[every.index(v)] - again[k], v["ask"] - asked[0]["ask"], rtol=1e-4, atol=2e-4)
  # The runners-up are the next likeliest answers of the full scoring, in its order, with their held-out AUCs.
  order = [every[i] for i in np.argsort(-again)]
  want = order[1:1 + min(selection.RUNNERS_UP, len(every) - 1)]
  assert [t for t, _ in r["runners_up"]] == [v["label"] for v in want]
  assert [a for _, a in r["runners_up"]] == [v["auc"] for v in want]


def test_the_ask_rule_weighs_two_token_extensions_when_they_are_asked_for(tiny, tmp_path):
  """With --extend_top the ask rule compares the extensions as whole answers beside the single tokens."""
  feature = data_lib.load_features(write_feature(tmp_path / "toy.jsonl"))[0]
  scfg = dataclasses.replace(selection.SelectConfig(), rule="ask", ask_margin=50.0, coverage_top=64, extend_top=2,
                             extend_each=2)
  r = labeling.label_features(tiny, [feature], disc_lib.get("namer"), dataclasses.replace(LCFG, steps=0),
                              str(tmp_path / "out"), scfg=scfg, plots=False)[0]
  every = [v for v in r["verification"] if "ask" in v or "ask_bounded" in v]
  assert {len(v["token_ids"]) for v in every} == {1, 2}
  words = coverage.ask_words(feature, LCFG.threshold)
  again = coverage.ask_scores(tiny, words, [v["label"] for v in every], end=True)
  assert every[int(np.argmax(again))]["token_ids"] == r["token_ids"]


def test_the_ask_rule_needs_a_chat_template(tiny, tmp_path, monkeypatch):
  feature = data_lib.load_features(write_feature(tmp_path / "toy.jsonl"))[0]
  monkeypatch.setattr(type(tiny.tokenizer), "has_chat_template", property(lambda self: False))
  with pytest.raises(UserError, match="no chat template"):
    labeling.label_features(tiny, [feature], disc_lib.get("namer"), LCFG, str(tmp_path / "out"),
                            scfg=dataclasses.replace(selection.SelectConfig(), rule="ask"), plots=False)
