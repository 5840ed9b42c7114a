"""How a label covers a feature's positives: the signals of the naming rule (`selection.SelectConfig.rule`).

A member word (' knife' for tools) separates a category's examples from random words as well as the category's name
does, so discrimination alone cannot choose between them. What tells them apart is coverage: the name fits *all* the
positives, a member only the few like itself. Three measures of it, each cheap on the namer's cached passes:

- `log_rank_gap`: where the label ranks in the namer's next-token distribution after each example ("saw is a kind
  of"): mean log(1 + rank) over negatives minus over positives. A member ranks high after its own kind only.
- `typicality` over every positive of the training and validation examples, first tokens only: how much the label
  raises the probability of the positive words after "Examples of<label>:" (one short pass per label).
- `set_namer`: log P(label | "w1, w2, w3 and w4 are kinds of") over sets of four different positive words. A member
  cannot be the kind of four different members; the category's name is what a set of them has in common.
  `set_scores` is the same question for labels of any length: alone, among the best candidates by validation loss,
  it is the `set_namer` rule, measured on the benchmark's tuning half with Qwen2.5-Coder-1.5B (experiments/models).

`coverage_choice` picks, among the best candidates by validation loss, the one with the highest sum of the three
z-scored signals. Chosen on the naming benchmark's tuning half (experiments/naming/probes/naming_pool.py).

- `ask_scores`: an instruct model asked in its chat format ("These words are all examples of one category: w1, ...,
  w12. What is the name of that category? Answer with one word.") scores each candidate as its answer. The set namer
  reads the model as a text completer; asked as a chat model it knows better which word names a set
  (experiments/naming/chooser.py). It answers nothing of its own: it ranks candidates the discriminator found.
"""

from __future__ import annotations

import concurrent.futures
from typing import Sequence

import numpy as np

from tokenlabel_jax import data as data_lib
from tokenlabel_jax.discriminators import prefix
from tokenlabel_jax.discriminators.scoring import namer_scores
from tokenlabel_jax.discriminators.templates import DiscriminatorConfig, ExampleText, token_plan

SET_SHOTS = ("jazz, opera, blues and reggae are kinds of music.\ngranite, basalt, slate and marble are kinds of rock.\n"
             "Monday, Friday, Tuesday and Sunday are kinds of day.\n")


def log_rank_gap(logq_BxV: np.ndarray, positive_B: np.ndarray, mask_V: np.ndarray) -> np.ndarray:
  """Mean over negatives minus mean over positives of log(1 + the label's rank among the allowed tokens) in each
  example's next-token distribution; -inf outside the mask. V values."""
  words = np.flatnonzero(mask_V)
  pos = np.asarray(positive_B, bool)
  weight_B = np.where(pos, -1.0 / max(pos.sum(), 1), 1.0 / max((~pos).sum(), 1)).astype(np.float32)
  log_rank_W = np.log1p(np.arange(words.size, dtype=np.float32))

  def part(rows):  # sum over these rows of weight x log(1 + rank): sorts release the GIL, so two run at once
    lq = np.asarray(logq_BxV)[rows][:, words]
    lr = np.empty_like(lq)
    np.put_along_axis(lr, np.argsort(-lq, axis=1), log_rank_W[None], axis=1)
    return weight_B[rows] @ lr

  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    gap_W = sum(pool.map(part, np.array_split(np.arange(pos.size), 2)))
  out = np.full(mask_V.shape[0], -np.inf, np.float32)
  out[words] = gap_W
  return out


def positive_words(feature, threshold: float = 0.0) -> list[str]:
  """The distinct alphabetic positive tokens (activation > threshold) of the feature's training records, lower-cased
  and sorted. Records without a split are split as labeling splits them (before, such a feature had no words here,
  and the set namer's signal was missing for it)."""
  feature = data_lib.assign_splits(feature, threshold=threshold)
  words = (data_lib.word_of(tok) for r in feature.records if r.split == "train"
           for tok, a in zip(r.tokens, r.activations) if a > threshold)
  return sorted({w.lower() for w in words if w.isalpha()})  # word_of: no 'Ġ' or '▁' marker, as the prompts show


def word_sets(words: Sequence[str], n_sets: int, seed: int, k: int = 4) -> list[list[str]]:
  if len(words) < k:
    return []
  rng = np.random.default_rng(seed)
  return [list(rng.choice(list(words), k, replace=False)) for _ in range(n_sets)]


def set_namer(m, sets: Sequence[Sequence[str]]) -> np.ndarray:
  """Mean over the sets of log P(next token | few-shot lines + "w1, w2, w3 and w4 are kinds of"): V values (NaN
  without sets). The few-shot lines run once per model; each set runs only its own tokens."""
  if not sets:
    return np.full(m.cfg.vocab_size, np.nan, np.float32)
  ids = [m.tokenizer.encode(SET_SHOTS + ", ".join(s[:-1]) + " and " + s[-1] + " are kinds of") for s in sets]
  return np.asarray(prefix.last_logq(m.params, m.cfg, ids)).mean(0)


# The set namer as a discriminator template: each "example" is a set of positive words, so that labels of any length
# are scored on it like the namer's (one- and two-token labels exactly, longer ones teacher-forced).
SET_NAMER = DiscriminatorConfig(name="set_namer", kind="namer", template=SET_SHOTS + "{word} are kinds of{label}")


def set_scores(m, feature, threshold: float, n_sets: int, ids: Sequence[Sequence[int]]) -> np.ndarray:
  """Per label, the mean over `n_sets` sets of four positive training words of log P(label | few-shot lines +
  "w1, w2, w3 and w4 are kinds of"): what a set of members has in common. NaN without four positive words."""
  sets = word_sets(positive_words(feature, threshold), n_sets, 0)
  if not sets:
    return np.full(len(ids), np.nan)
  texts = [ExampleText(word=", ".join(s[:-1]) + " and " + s[-1], context="") for s in sets]
  prep = prefix.prepare_splits(m.params, m.cfg, m.tokenizer, SET_NAMER, [texts],
                                   keep_cache=any(len(i) > 1 for i in ids))[0]
  return namer_scores(m.params, m.cfg, prep, [tuple(i) for i in ids]).mean(1)


def zscore(x: np.ndarray) -> np.ndarray:
  x = np.asarray(x, np.float64)
  finite = np.isfinite(x)
  if not finite.any():
    return np.zeros_like(x)
  x = np.where(finite, x, x[finite].min())
  return (x - x.mean()) / (x.std() + 1e-9)


def coverage_order(val_loss_C: np.ndarray, signals: dict[str, np.ndarray], top: int) -> list[int]:
  """Indices of the best `top` candidates by validation loss, by the sum of their z-scored signals (each z-scored
  over those `top`), highest first: the coverage rule's choice and its runners-up."""
  order = np.argsort(np.asarray(val_loss_C), kind="stable")[:top]
  total = sum(zscore(np.asarray(s)[order]) for s in signals.values())
  return [int(order[i]) for i in np.argsort(-np.asarray(total), kind="stable")]


def coverage_choice(val_loss_C: np.ndarray, signals: dict[str, np.ndarray], top: int) -> int:
  """Index of the chosen candidate: among the best `top` by validation loss, the highest sum of the z-scored
  signals."""
  return coverage_order(val_loss_C, signals, top)[0]


ASK_WORDS = 12  # positive words named in the chat question


def ask_words(feature, threshold: float = 0.0, n: int = ASK_WORDS) -> list[str]:
  """Up to `n` of the feature's positive words (`positive_words`), drawn with seed 0 where there are more."""
  words = positive_words(feature, threshold)
  if len(words) > n:
    words = sorted(np.random.default_rng(0).choice(words, n, replace=False).tolist())
  return words


def _question(words: Sequence[str], listed: Sequence[str] | None, extra: str) -> str:
  body = f"These words are all examples of one category: {', '.join(words)}.\nWhat is the name of that category?"
  if extra:
    body += " " + extra
  if listed:
    body += f"\nChoose from: {', '.join(sorted(listed))}."
  return body + "\nAnswer with one word."


def ask_prompt(tokenizer, words: Sequence[str], listed: Sequence[str] | None = None,
               shots: Sequence[tuple[Sequence[str], str]] = (), extra: str = "") -> str:
  """The chat question whose answer names the set of `words` (with `listed`: the words to choose from). `shots`:
  worked examples, (words, answer) pairs asked and answered in earlier turns; `extra`: a sentence added to the
  question (in the worked examples too)."""
  turns = []
  for shot_words, answer in shots:
    turns += [{"role": "user", "content": _question(shot_words, None, extra)},
              {"role": "assistant", "content": answer}]
  return tokenizer.chat(turns + [{"role": "user", "content": _question(words, listed, extra)}])


def answer_end(tokenizer) -> int:
  """The token that ends an assistant's answer in the model's chat template (Qwen2's <|im_end|>)."""
  probe = "Zq"
  text = tokenizer.chat([{"role": "user", "content": "?"}, {"role": "assistant", "content": probe}],
                        add_generation_prompt=False)
  return tokenizer.encode(text[text.rindex(probe) + len(probe):])[0]


BOUND_ROWS = 16  # forms run at a time by ask_scores(best_only=True): namer_scores' row step on one prompt


def ask_scores(m, words: Sequence[str], labels: Sequence[str], listed: Sequence[str] | None = None,
               end: bool = False, best_only: int = 0, shots: Sequence[tuple[Sequence[str], str]] = (),
               extra: str = "", any_spelling: bool = False) -> np.ndarray:
  """Per label, log P(label | the chat question about `words`) as the assistant's answer, teacher-forced: the
  better of its lower-case and capitalized forms, without the leading space (an answer starts its turn). With `end`,
  the answer's end too (`answer_end`), so that the first piece of a longer answer (' clo' of ' clothing') is not
  scored as if it were the whole answer. Relative to one constant shared by every label.

  `any_spelling`: instead the log of the summed probabilities of its distinct spellings, lower-case and capitalized,
  each without and with a leading space: Qwen2.5 holds " furniture" as one token and "furniture" as two, and the
  model answers with either (experiments/naming/plan_spellings.md). Not with `best_only`.

  `best_only=k`: what the ask rule needs, the k likeliest labels (the label and its runners-up), for a fraction of
  the passes. A whole answer is never likelier than its first token, whose probability the question's own pass
  gives: forms are run in order of it, BOUND_ROWS at a time, until the next one's first token is less likely than the
  k-th best label so far. The k likeliest get their exact scores; a label none of whose forms ran gets NaN (it
  cannot be among them), another that ran the score of its forms that ran (a form left out is less likely than the
  k-th best).
  `shots`, `extra`: as for `ask_prompt`."""
  def ask(w):
    return DiscriminatorConfig(name="ask", kind="namer", calibrate=False,
                               template=ask_prompt(m.tokenizer, w, listed, shots, extra) + "{label}")
  disc, ex = ask(words), ExampleText(word="", context="")
  # The question's template before the words is the same for every feature: it runs once per model.
  head = prefix.common_head([token_plan(d, m.tokenizer, ex, 1)[0] for d in (disc, ask(["x"]))])
  prep = prefix.prepare_splits(m.params, m.cfg, m.tokenizer, disc, [[ex]], keep_cache=True, head=head)[0]
  tail = (answer_end(m.tokenizer),) if end else ()
  if any_spelling:
    if best_only:
      raise ValueError("any_spelling scores every spelling of every label: best_only does not apply")
    spelled = [sorted({s + f(w.strip()) for f in (str.lower, str.capitalize) for s in ("", " ")}) for w in labels]
    got = namer_scores(m.params, m.cfg, prep, [tuple(m.tokenizer.encode(f)) + tail for fs in spelled for f in fs])
    ends = np.cumsum([len(fs) for fs in spelled])
    return np.asarray([np.logaddexp.reduce(part) for part in np.split(np.asarray(got)[:, 0], ends[:-1])])
  forms = [f(w.strip()) for w in labels for f in (str.lower, str.capitalize)]
  seqs = [tuple(m.tokenizer.encode(f)) + tail for f in forms]
  if not best_only:
    got = namer_scores(m.params, m.cfg, prep, seqs)[:, 0]
  else:
    first = np.asarray(prep.logq_BxV)[0, [q[0] for q in seqs]] - float(prep.baseline_B[0])
    order, got = np.argsort(-first, kind="stable"), np.full(len(seqs), np.nan)
    for start in range(0, len(order), BOUND_ROWS):
      so_far = np.fmax(got[0::2], got[1::2])  # each label's better form run yet (NaN: none)
      so_far = np.sort(so_far[np.isfinite(so_far)])[::-1]
      bar = so_far[best_only - 1] if len(so_far) >= best_only else -np.inf
      run = [int(i) for i in order[start:start + BOUND_ROWS] if first[i] >= bar]
      if not run:
        break
      got[run] = namer_scores(m.params, m.cfg, prep, [seqs[i] for i in run])[:, 0]
  got = np.asarray(got).reshape(len(labels), 2)
  return np.fmax(got[:, 0], got[:, 1])


def one_per_word(texts: Sequence[str], val_loss: Sequence[float]) -> list[int]:
  """Indices by validation loss, one per word: a word in two spellings (case, leading space) keeps its better one."""
  seen, out = set(), []
  for i in np.argsort(np.asarray(val_loss, np.float64), kind="stable"):
    key = texts[i].strip().lower()
    if key and key not in seen:
      seen.add(key)
      out.append(int(i))
  return out


def ask_choice(val_loss_C: Sequence[float], ask_C: Sequence[float], margin: float) -> int:
  """Index of the chosen candidate: among those within `margin` of the lowest validation loss, the highest ask
  score; the lowest validation loss where no ask score is known."""
  loss_C, ask_C = np.asarray(val_loss_C, np.float64), np.asarray(ask_C, np.float64)
  ok_C = (loss_C <= loss_C.min() + margin) & np.isfinite(ask_C)
  return int(np.argmax(np.where(ok_C, ask_C, -np.inf))) if ok_C.any() else int(np.argmin(loss_C))
