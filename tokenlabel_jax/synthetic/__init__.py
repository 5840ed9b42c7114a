"""Synthetic per-token features with known ground truth, built from WordNet and Debian text corpora.

A feature here is a concept (a WordNet noun category, Chinese text, numbers) and its activation records: real
sentences, tokenized into word-level tokens, with activation 1.0 exactly on the tokens that are instances of the
concept. Because the truth is known, such features can score a labeler before it meets real model features.

Everything is a pure function of its inputs and a seed, so the files that scripts/make_features.py writes can be
remade bit for bit and the pieces can be tested on tiny hand-made inputs.

One module per job, in dependency order: `wordnet` (the WordNet 3.0 database reader), `text` (reading the corpora,
sentences, word-level tokens), `concepts` (which tokens are instances of a WordNet category), `records` (activation
records from real and substituted sentences) and `features` (the test-set features). Callers use this package's names
(`synthetic.WordNet`, `synthetic.concept_records`, ...).
"""

from tokenlabel_jax.synthetic.concepts import (AMBIGUOUS, NEUTRAL, POSITIVE, Concept, TokenJudge, build_concept,
                                               concept_lemmas, is_common_lemma, is_digit_run, is_proper_lemma,
                                               lemma_candidates)
from tokenlabel_jax.synthetic.features import (NON_MAMMAL_ROOTS, NUMBER_ROOTS, animal, animal_concept, chinese,
                                               concept_feature, mammal, mammal_concept, mammal_hardneg,
                                               mammal_hardneg_concept, number, number_concept)
from tokenlabel_jax.synthetic.records import NEAR_MISS, Corpus, concept_records, make_record, split_words
from tokenlabel_jax.synthetic.text import (CHINESE_FORTUNES, FORTUNES_DIR, NON_PROSE_FORTUNES, cjk_activations,
                                           cjk_spans, english_sentences, load_chinese_passages, load_english_sentences,
                                           overlap_activations, parse_kjv, read_fortunes, split_sentences, tokenize)
from tokenlabel_jax.synthetic.wordnet import (HYPERNYM, HYPONYM, INSTANCE_HYPERNYM, INSTANCE_HYPONYM, OFFENSIVE_USAGE,
                                              USAGE_DOMAIN, WORDNET_DIR, Pointer, Synset, WordNet, parse_data_line,
                                              parse_index_line)
