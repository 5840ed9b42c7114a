"""Tests of the synthetic features on a tiny hand-made WordNet, plus one check on the installed WordNet."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tokenlabel_jax import synthetic as S

# Synsets of the fixture: id -> (lex_filenum, words, pointers as (symbol, target id), gloss).
# Sense order in the index follows the order of ids in each lemma's list below.
_SYNSETS = {
    "entity": (3, ["entity"], [("~", "animal"), ("~", "artifact"), ("~", "person"), ("~", "integer")], "that which is"),
    "animal": (3, ["animal", "beast"], [("@", "entity"), ("~", "mammal"), ("~", "bird")], "a living organism"),
    "mammal": (5, ["mammal"], [("@", "animal"), ("~", "dog"), ("~", "horse"), ("~", "bat_animal")], "hairy"),
    "dog": (5, ["dog", "domestic_dog"], [("@", "mammal"), ("~i", "rex")], "a domestic canine"),
    "rex": (5, ["Rex"], [("@i", "dog")], "a famous dog"),
    "horse": (5, ["horse", "Equus_caballus"], [("@", "mammal")], "a hoofed animal"),
    "bat_animal": (5, ["bat", "chiropteran"], [("@", "mammal")], "a flying mammal"),
    "bird": (5, ["bird"], [("@", "animal"), ("~", "sparrow")], "feathered"),
    "sparrow": (5, ["sparrow", "true_sparrow"], [("@", "bird")], "a small bird"),
    "artifact": (6, ["artifact"], [("@", "entity"), ("~", "table"), ("~", "bat_club"), ("~", "chair")], "made"),
    "table": (6, ["table"], [("@", "artifact")], "furniture with a top"),
    "chair": (6, ["chair"], [("@", "artifact")], "a seat"),
    "bat_club": (6, ["bat", "club"], [("@", "artifact")], "a club used in games"),
    "person": (18, ["person", "someone"], [("@", "entity"), ("~", "farmer")], "a human being"),
    "farmer": (18, ["farmer"], [("@", "person")], "grows crops"),
    "integer": (23, ["integer", "whole_number"], [("@", "entity"), ("~", "one"), ("~", "two")], "a number"),
    "one": (23, ["one", "1", "I", "ace", "unity", "single", "monad", "ane", "uno", "yksi", "eins"], [("@", "integer")],
            "the smallest whole number"),
    "two": (23, ["two", "2", "II"], [("@", "integer")], "one more than one"),
}
# Lemma -> synset ids in sense order ("bat": the club first, so the mammal sense is not dominant).
_SENSES = {
    "animal": ["animal"], "beast": ["animal"], "entity": ["entity"], "mammal": ["mammal"], "dog": ["dog"],
    "domestic_dog": ["dog"], "rex": ["rex"], "horse": ["horse"], "equus_caballus": ["horse"],
    "bat": ["bat_club", "bat_animal"], "chiropteran": ["bat_animal"], "club": ["bat_club"], "bird": ["bird"],
    "sparrow": ["sparrow"], "true_sparrow": ["sparrow"], "artifact": ["artifact"], "table": ["table"],
    "chair": ["chair"], "person": ["person"], "someone": ["person"], "farmer": ["farmer"], "integer": ["integer"],
    "whole_number": ["integer"], "one": ["one"], "1": ["one"], "i": ["one"], "ace": ["one"], "unity": ["one"],
    "single": ["one"], "monad": ["one"], "ane": ["one"], "uno": ["one"], "yksi": ["one"], "eins": ["one"],
    "two": ["two"], "2": ["two"], "ii": ["two"],
}
_LICENSE = "  1 This software and database is being provided to you, the LICENSEE,\n  2 by Princeton University.\n"


def _data_lines(offsets: dict[str, int]) -> list[str]:
  lines = []
  for sid, (lexfile, words, pointers, gloss) in _SYNSETS.items():
    # lex_id "a" (hex 10) on the last word exercises the hex parse; w_cnt is two hex digits.
    word_part = " ".join(f"{w} {'a' if i == len(words) - 1 and len(words) > 3 else '0'}" for i, w in enumerate(words))
    ptr_part = " ".join(f"{sym} {offsets[t]:08d} n 0000" for sym, t in pointers)
    lines.append(f"{offsets[sid]:08d} {lexfile:02d} n {len(words):02x} {word_part} "
                 f"{len(pointers):03d} {ptr_part} | {gloss}  \n")
  return lines


def write_wordnet(root) -> str:
  """Writes data.noun and index.noun in the wndb format, with true byte offsets, and returns the directory."""
  offsets = {sid: 0 for sid in _SYNSETS}
  for _ in range(2):  # Offsets are fixed width, so the second pass is exact.
    pos = len(_LICENSE.encode())
    for sid, line in zip(_SYNSETS, _data_lines(offsets)):
      offsets[sid] = pos
      pos += len(line.encode())
  with open(os.path.join(root, "data.noun"), "w", encoding="utf-8") as f:
    f.write(_LICENSE + "".join(_data_lines(offsets)))
  with open(os.path.join(root, "index.noun"), "w", encoding="utf-8") as f:
    f.write(_LICENSE)
    for lemma in sorted(_SENSES):
      ids = _SENSES[lemma]
      f.write(f"{lemma} n {len(ids)} 1 @ {len(ids)} 0 {' '.join(f'{offsets[i]:08d}' for i in ids)}  \n")
  return str(root)


@pytest.fixture()
def wn(tmp_path):
  return S.WordNet(write_wordnet(tmp_path))


SENTENCES = [
    "The dog chased the sparrow across the yard.",
    "My horse likes the table in the barn.",
    "A dog and a horse met a farmer.",
    "The farmer sold two chairs and one table.",
    "She sat on the chair near the table.",
    "The table was old and the chair was new.",
    "He found a bat in the cave.",
    "The sparrow sang on the fence every morning.",
    "Our table stood in the kitchen for years.",
    "A chair is a seat with a back.",
    "The farmer built a fence around the field.",
    "Dogs bark at horses in the street.",
]


def test_parse_data_line_reads_hex_counts_and_pointers():
  line = "00001740 03 n 02 entity 0 thing a 001 ~ 00002137 n 0000 | that which exists  "
  s = S.parse_data_line(line)
  assert (s.offset, s.lex_filenum, s.ss_type) == (1740, 3, "n")
  assert s.words == ("entity", "thing") and s.lex_ids == (0, 10)
  assert s.pointers == (S.Pointer("~", 2137, "n", "0000"),)
  assert s.gloss == "that which exists"


def test_reader_offsets_senses_and_lemmas(wn):
  dog = wn.sense("dog", 1)
  assert wn.synset(dog).offset == dog
  assert wn.lemmas(dog) == ["dog", "domestic_dog"]
  assert len(wn.lemmas(wn.sense("one", 1))) == 11  # w_cnt 0b
  assert [wn.lemmas(o)[1] for o in wn.synsets_for("bat")] == ["club", "chiropteran"]
  assert wn.synsets_for("Dog") == wn.synsets_for("dog")
  with pytest.raises(KeyError):
    wn.sense("dog", 2)


def test_hyponym_closure_and_instances(wn):
  mammal = wn.sense("mammal", 1)
  closure = wn.hyponym_closure(mammal)
  names = {wn.lemmas(o)[0] for o in closure}
  assert names == {"mammal", "dog", "horse", "bat", "Rex"}
  assert "Rex" not in {wn.lemmas(o)[0] for o in wn.hyponym_closure(mammal, instances=False)}
  assert wn.sense("animal", 1) in wn.hypernym_closure(wn.sense("sparrow", 1))


def test_dominant_sense_rule(wn):
  animal, mammal = wn.sense("animal", 1), wn.sense("mammal", 1)
  assert wn.dominant_sense_in("dog", mammal) and wn.dominant_sense_in("horse", animal)
  assert wn.dominant_sense_in("sparrow", animal) and not wn.dominant_sense_in("sparrow", mammal)
  assert not wn.dominant_sense_in("table", animal)
  # bat's first sense is the club: not a positive, but ambiguous (it may mean the animal).
  assert not wn.dominant_sense_in("bat", mammal) and wn.any_sense_in("bat", mammal)
  positives, ambiguous = S.concept_lemmas(wn, [mammal])
  assert {"dog", "horse", "mammal", "chiropteran"} <= positives
  assert "bat" in ambiguous and "rex" not in positives  # Rex is a name, not a lowercase lemma.


def test_tokenize_leading_spaces_punctuation_and_cjk():
  assert S.tokenize("The dog barked.") == ["The", " dog", " barked", "."]
  assert S.tokenize("Don't stop, 42 times!") == ["Don't", " stop", ",", " 42", " times", "!"]
  assert S.tokenize("我爱北京 ok") == ["我爱", "北京", " ok"]
  tokens = S.tokenize("天安门上太阳升", np.random.default_rng(0))
  assert "".join(tokens) == "天安门上太阳升" and all(1 <= len(t) <= 2 for t in tokens)


def test_cjk_overlap_rule():
  tokens = ["ab", "c中", "文", " x", "。", " Hi"]
  assert S.cjk_spans("".join(tokens)) == [(3, 5), (7, 8)]
  assert S.cjk_activations(tokens) == [0.0, 1.0, 1.0, 0.0, 1.0, 0.0]
  assert S.overlap_activations(["abc", "def"], [(2, 4)]) == [1.0, 1.0]
  assert S.overlap_activations(["abc", "def"], [(3, 3)]) == [0.0, 0.0]


def test_lemma_candidates_plurals(wn):
  assert S.lemma_candidates(wn, "dogs") == ["dog"]
  assert S.lemma_candidates(wn, "horses") == ["horse"]
  assert S.lemma_candidates(wn, "tables") == ["table"]
  assert S.lemma_candidates(wn, "barked") == ["barked"]


def _mammal_records(wn, seed):
  corpus = S.Corpus.build(wn, {"test": SENTENCES})
  concept = S.build_concept(wn, "mammal", [("mammal", 1)])
  return corpus, concept, S.concept_records(corpus, concept, seed=seed, n_records=24)


def test_record_format_and_truth(wn):
  corpus, concept, records = _mammal_records(wn, seed=0)
  assert records
  judge = S.TokenJudge(wn, concept)
  sources = set()
  for r in records:
    assert set(r) >= {"tokens", "activations", "feature", "split"}
    assert r["feature"] == "mammal" and r["split"] in ("train", "heldout")
    assert len(r["tokens"]) == len(r["activations"])
    assert all(a in (0.0, 1.0) for a in r["activations"])
    truth = [s for s, _ in judge.sentence(r["tokens"])]
    assert S.AMBIGUOUS not in truth  # "bat" sentences are left out
    assert r["activations"] == [1.0 if s == S.POSITIVE else 0.0 for s in truth]
    sources.add(r["source"])
  assert sources == {"natural", "substituted"}
  assert any(" dog" in r["tokens"] and r["activations"][r["tokens"].index(" dog")] == 1.0 for r in records)


def test_siblings_are_near_misses(wn):
  """A category's siblings (the other children of its parents) are its hard negatives: written into the text at
  NEAR_MISS, never positive, and never the category's own words."""
  name = lambda offsets: sorted(wn.lemmas(o)[0] for o in offsets)
  assert name(wn.siblings(wn.sense("dog", 1))) == ["bat", "horse"]
  assert name(wn.siblings(wn.sense("mammal", 1))) == ["bird"]
  assert name(wn.siblings(wn.sense("animal", 1))) == ["artifact", "integer", "person"]
  dog = S.build_concept(wn, "dog", [("dog", 1)], siblings=True)
  assert dog.hard_negatives == {"horse", "chiropteran"}  # bat means the club first: not a near miss, nor Equus_caballus
  assert S.build_concept(wn, "dog", [("dog", 1)]).hard_negatives == frozenset()
  corpus = S.Corpus.build(wn, {"test": SENTENCES})
  mammal = S.build_concept(wn, "mammal", [("mammal", 1)], siblings=True)
  assert mammal.hard_negatives == {"bird", "sparrow"}
  records = S.concept_records(corpus, mammal, seed=0, n_records=24)
  near = [(t, r["split"]) for r in records for t, a in zip(r["tokens"], r["activations"]) if a == S.NEAR_MISS]
  assert near and {t.strip().lower() for t, _ in near} == {"sparrow"}
  assert all(a in (0.0, S.NEAR_MISS, 1.0) for r in records for a in r["activations"])


def test_split_by_word(wn):
  _, _, records = _mammal_records(wn, seed=3)
  words = {"train": set(), "heldout": set()}
  for r in records:
    for t, a in zip(r["tokens"], r["activations"]):
      if a:
        words[r["split"]].add(S.lemma_candidates(wn, t.strip().lower())[0])
  assert not words["train"] & words["heldout"]


def test_deterministic_under_seed(wn):
  assert _mammal_records(wn, 7)[2] == _mammal_records(wn, 7)[2]
  assert _mammal_records(wn, 7)[2] != _mammal_records(wn, 8)[2]


def test_number_feature_counts_digits_and_number_words(wn):
  corpus = S.Corpus.build(wn, {"test": SENTENCES + ["In 1999 we had 3 dogs.", "He sold one horse."]})
  concept = S.build_concept(wn, "number", [("integer", 1)], extra=S.is_digit_run, noun_check=False)
  judge = S.TokenJudge(wn, concept)
  labels = judge.sentence(S.tokenize("In 1999 we had two dogs and 3 chairs."))
  assert [s for s, _ in labels] == [0, 1, 0, 0, 1, 0, 0, 1, 0, 0]
  records = S.concept_records(corpus, concept, seed=0, n_records=10)
  assert any(r["activations"] and max(r["activations"]) == 1.0 for r in records)


def test_chinese_records():
  passages = [["床前明月光，疑是地上霜。"], ["举头望明月"], ["在 Debian 这种规模的项目中"]]
  english = ["The dog barked at the moon tonight.", "Nothing is certain but death and taxes."]
  records = S.chinese(passages, english, seed=0, n_records=20)
  assert len(records) == 20
  for r in records:
    assert len(r["tokens"]) == len(r["activations"])
    for t, a in zip(r["tokens"], r["activations"]):
      assert a == (1.0 if S.cjk_spans(t) else 0.0)
  assert {r["source"] for r in records} >= {"spliced", "english", "chinese"}
  assert S.chinese(passages, english, seed=0, n_records=20) == records


@pytest.mark.corpora
def test_installed_wordnet_animals():
  if not os.path.exists(os.path.join(S.WORDNET_DIR, "data.noun")):
    pytest.skip(f"no WordNet at {S.WORDNET_DIR}: run scripts/install_corpora.sh (Debian wordnet-base)")
  wn = S.WordNet()
  animal, mammal = wn.sense("animal", 1), wn.sense("mammal", 1)
  assert "animal" in wn.lemmas(animal) and "mammal" in wn.lemmas(mammal)
  for word in ("dog", "horse"):
    assert wn.dominant_sense_in(word, animal) and wn.dominant_sense_in(word, mammal)
  assert wn.dominant_sense_in("sparrow", animal) and not wn.dominant_sense_in("sparrow", mammal)
  assert not wn.dominant_sense_in("table", animal) and not wn.dominant_sense_in("table", mammal)
  number = S.number_concept(wn)
  assert {"one", "two", "three", "twenty", "hundred"} <= number.positives
