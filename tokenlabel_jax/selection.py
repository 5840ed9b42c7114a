"""Choosing the label among exactly scored candidates, so that it names the category rather than one of its members.

Where a label is chosen: `choose_label` (after `gather` has collected the candidates). Candidates are scored on the
examples of splits.py; the labels themselves enter the model in discriminators/scoring.py.

Held-out discrimination alone cannot tell a category's name from a member word: ' knife' separates tools from random
words as well as ' tool' does, and with 64 validation examples the two are a near tie decided by noise. The other
direction tells them apart: a category's name makes *all* its members likely after it ("Examples of tool: hammer",
"... : saw"), a member only the members like itself ("Examples of knife: saw" is odd). So the rule is: the few best
candidates by calibrated validation loss (within `margin` of the best) compete on typicality, the mean over positive
validation examples of log P(word | "Examples of<label>:") - log P(word | "Examples of things:"). The default rule
since then, `rule="coverage"` (tokenlabel_jax/coverage.py, run by `choose_label`), compares the best 32 on three
coverage signals at once and named the category more often on the benchmark's test half (55 of 117 against 43).

Measured on the naming benchmark's tuning half (experiments/results/naming_rules.md): the model's own prior at the
slot ("naturalness", what the KL term pulls toward) picks broader words (' person' for criminals) and named the
category less often than the lowest validation loss; typicality among the best few named it more often.

The candidate pool is the optimizer's (each seed's top tokens of p and of the gradient) plus, for the namer, an
exact scan of the whole vocabulary and two-token extensions of its best first tokens (" body" + " part",
" mamm" + "al"): a category's name is often two tokens.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tokenlabel_jax import coverage
from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import evaluation
from tokenlabel_jax import model as model_lib
from tokenlabel_jax import naming
from tokenlabel_jax import optimization as opt_lib
from tokenlabel_jax.errors import UserError, check_settings, check_types
from tokenlabel_jax.splits import Split, evaluate_labels, example_texts


@dataclasses.dataclass(frozen=True)
class SelectConfig:
  """How candidates are gathered and one is chosen (chosen on the naming benchmark's tuning half)."""

  rule: str = ""  # "": the model's measured rule (`default_rule`, filled in by `for_model`); "coverage": the coverage
  # signals decide among the best coverage_top (namer only); "set_namer": the set namer's log-probability decides
  # among the best coverage_top (namer only); "ask": the chat model's answer decides among the best coverage_top
  # within ask_margin (namer, instruct models only); "typicality": typicality among the best typical_top within margin
  coverage_pool: int = 24  # coverage rule: the best single tokens by validation loss whose signals are measured
  coverage_top: int = 32  # coverage rule: of those (and up to 8 log-rank candidates after them), the best compared
  coverage_signals: tuple[str, ...] = ("lrg", "typ_all", "set_pos")
  set_sets: int = 8  # coverage rule: sets of four positive words given to the set namer
  margin: float = 0.1  # validation-loss margin within which typicality decides
  typical_top: int = 4  # at most this many of the best candidates (by validation loss) compete on typicality
  typical_disc: str = "likelihood"  # the reverse-direction prompt that measures typicality
  scan_top: int = 48  # namer: best single tokens of the exact vocabulary scan, by validation loss
  natural_top: int = 16  # namer: most natural single tokens among those with validation AUC >= 0.75
  extend_top: int = 0  # first tokens extended by a second token (--extend_top; 0: single tokens, docs/naming.md)
  extend_each: int = 3  # continuations per first token
  calibrate_top: int = 2048  # namer scan: tokens given a calibration fit, chosen by AUC and score gap (0: all)
  min_auc_lower: float = 0.5  # a label whose held-out AUC is not above this (lower 95% bound) is no label
  propose_with: str = "none"  # "explainer": the LLM explainer's answers join the candidates (namer; any length)
  proposals: int = 4  # explainer answers per feature (the first greedy, the others sampled)
  ask_margin: float = 0.2  # ask rule: only candidates within this of the lowest validation loss compete
  set_margin: float | None = None  # set namer rule: only candidates within this of the lowest validation loss compete
  answers_first: bool | None = None  # set namer rule: the explainer's earliest answer among those wins
  answers_above_chance: bool | None = None  # set namer rule: an explainer answer counts (wins as an answer, or is
  # compared as a proposal) only where its validation AUC is above min_auc_lower (lower 95% bound), as a label must be
  # (`set_namer_choice`); None for the three: the combination's settings with --propose_with=explainer, else none

  def __post_init__(self):
    """Refuses a margin or a count that would end in a traceback (no finalist) or a silent no-op, naming the flag."""
    check_types(self)
    def margin_ok(x):
      return x is None or (math.isfinite(x) and x >= 0)
    checks = [("margin", margin_ok(self.margin), "a number of at least 0"),
              ("ask_margin", margin_ok(self.ask_margin), "a number of at least 0"),
              ("set_margin", margin_ok(self.set_margin), "a number of at least 0"),
              ("extend_top", self.extend_top >= 0, "at least 0"), ("proposals", self.proposals >= 1, "at least 1"),
              ("propose_with", self.propose_with in ("none", "explainer"), "none or explainer")]
    checks += [(n, getattr(self, n) >= 1, "at least 1") for n in ("coverage_pool", "coverage_top", "set_sets",
                                                                  "typical_top", "scan_top", "extend_each")]
    check_settings(self, checks, {"margin": "select_margin", "ask_margin": "select_ask_margin",
                                  "set_margin": "select_set_margin", "coverage_pool": None, "coverage_top": None,
                                  "set_sets": None, "typical_top": None, "scan_top": None, "extend_each": None})


@dataclasses.dataclass
class Candidate:
  ids: tuple[int, ...]
  text: str
  source: str  # "p" | "gradient" | "scan" | "natural" | "extension" | "coverage" | "explainer"
  stats: dict[str, float] = dataclasses.field(default_factory=dict)
  s_val: np.ndarray | None = dataclasses.field(default=None, repr=False)  # namer scores on validation examples
  p_test: np.ndarray | None = dataclasses.field(default=None, repr=False)  # namer: calibrated held-out probabilities


def _round_up(n: int, k: int) -> int:
  return -(-n // k) * k


def _continuation_ok(tokenizer, t: int) -> bool:
  """A second token that continues a word ('al' in ' mammal') or adds one (' part' in ' body part')."""
  s = tokenizer.token_str(t)
  w = s.strip()
  return w.isalpha() and w.isascii() and (s == w or (s.startswith(" ") and s[1:] == w and len(w) >= 3))


def scan_candidates(val_loss_V: np.ndarray, val_auc_V: np.ndarray, nat_V: np.ndarray, mask_V: np.ndarray,
                    scfg: SelectConfig) -> list[tuple[int, str]]:
  """The namer's exact vocabulary scan: best tokens by validation loss, and the most natural discriminating ones."""
  loss = np.where(mask_V, val_loss_V, np.inf)
  out = [(int(t), "scan") for t in np.argsort(loss)[:scfg.scan_top]]
  nat = np.where(mask_V & (val_auc_V >= 0.75), nat_V, -np.inf)
  out += [(int(t), "natural") for t in np.argsort(-nat)[:scfg.natural_top] if np.isfinite(nat[t])]
  return out


def prefilter(logq_BxV: np.ndarray, positive_B: np.ndarray, auc_V: np.ndarray, mask_V: np.ndarray, top: int
              ) -> np.ndarray:
  """The allowed tokens worth a calibration fit: the best `top` by validation AUC and the best top/4 by the mean
  score gap between positives and negatives (AUC saturates at 1 on 64 examples). Calibrating only these instead of
  the whole word-like vocabulary kept the scan's best 48 identical on 30 of 30 benchmark categories, at a sixth of
  the time (docs/performance.md). `top=0`: every allowed token."""
  allowed = np.flatnonzero(mask_V)
  if not top or top >= len(allowed):
    return allowed
  gap_V = np.where(mask_V, logq_BxV[positive_B].mean(0) - logq_BxV[~positive_B].mean(0), -np.inf)
  auc = np.where(mask_V, auc_V, -np.inf)
  keep = np.union1d(np.argsort(-auc, kind="stable")[:top], np.argsort(-gap_V, kind="stable")[:top // 4])
  return keep[mask_V[keep]]


def gather(m, disc: disc_lib.DiscriminatorConfig, val, mask_V: np.ndarray, optimizer_ids: Sequence[tuple[int, str]],
           scfg: SelectConfig = SelectConfig(), proposals: Sequence[Sequence[int]] = ()) -> list[Candidate]:
  """Candidates from the optimizer (token ids with their source) plus, for the namer, the scan, extensions and
  `proposals` (labels of any length proposed from outside, e.g. by the LLM explainer).

  `val` is the validation Split (examples, prepared prompts, targets). Single tokens only need the cached slot
  distribution; extensions and longer proposals run their tokens through the model on the validation examples.
  """
  singles: dict[int, str] = {}
  for t, src in optimizer_ids:
    singles.setdefault(int(t), src)
  if disc.kind != "namer":
    return [Candidate((t,), m.tokenizer.token_str(t), src) for t, src in singles.items()]
  logq = np.asarray(val.prep.logq_BxV) - np.asarray(val.prep.baseline_B)[:, None]
  cap = disc.max_scale if disc.calibrate else None
  auc_V = np.nan_to_num(evaluation.vocab_auc(logq, val.positive_B, mask_V), nan=0.0)
  loss_V = np.full(mask_V.shape[0], np.inf, np.float32)
  words = prefilter(logq, val.positive_B, auc_V, mask_V, scfg.calibrate_top)
  loss_V[words] = opt_lib.fit_calibration(logq[:, words].T, val.target_B, cap)[2]
  nat_V = logq[val.positive_B].mean(0)
  for t, src in scan_candidates(loss_V, auc_V, nat_V, mask_V, scfg):
    singles.setdefault(t, src)
  cands = [Candidate((t,), m.tokenizer.token_str(t), src, s_val=logq[:, t]) for t, src in singles.items()]
  if scfg.extend_top:
    first = [c.ids[0] for c in sorted(cands, key=lambda c: loss_V[c.ids[0]])[:scfg.extend_top]]
    cands += _extensions(m, val, logq, first, scfg)
  have = {c.ids for c in cands}
  extra = [tuple(int(t) for t in p) for p in dict.fromkeys(tuple(p) for p in proposals) if p and tuple(p) not in have]
  if extra:
    s_val = disc_lib.namer_scores(m.params, m.cfg, val.prep, extra)
    cands += [Candidate(ids, m.tokenizer.decode(list(ids)), "explainer", s_val=s) for ids, s in zip(extra, s_val)]
  return cands


def _extensions(m, val, logq_BxV: np.ndarray, first: Sequence[int], scfg: SelectConfig) -> list[Candidate]:
  """Two-token labels: each first token followed by its likeliest word-continuing or word-adding second tokens
  (by mean log-probability over the positive validation examples), with their exact validation scores."""
  pos = val.positive_B
  disc_lib.require_cache(val.prep)
  padded = list(first) + [first[-1]] * (scfg.extend_top - len(first))  # one compiled shape
  nxt_KxBxV = np.asarray(disc_lib.next_token_logp(m.params, m.cfg, val.prep, jnp.asarray(padded, jnp.int32)))
  out = []
  for k, t1 in enumerate(first):
    taken = 0
    for t2 in np.argsort(-nxt_KxBxV[k][pos].mean(0))[:64]:
      if taken == scfg.extend_each:
        break
      if _continuation_ok(m.tokenizer, int(t2)):
        ids = (int(t1), int(t2))
        out.append(Candidate(ids, m.tokenizer.decode(list(ids)), "extension",
                             s_val=logq_BxV[:, t1] + nxt_KxBxV[k][:, t2]))
        taken += 1
  return out


def score(m, disc, cands: list[Candidate], val, heldout, multi_heldout: bool = False) -> None:
  """Exact validation and held-out figures of every candidate (in place): val_loss, val_auc, naturalness, auc...

  Naturalness is the positives' mean label log-probability at the slot (for the namer, its score). The namer's
  two-token candidates get held-out figures only with `multi_heldout` (a model step per first token); `ensure_heldout`
  adds them for the one chosen.
  """
  if disc.kind != "namer":
    rows = evaluate_labels(m, disc, [list(c.ids) for c in cands], val, heldout)
    logq = np.asarray(val.prep.logq_BxV)[val.positive_B]
    for c, row in zip(cands, rows):
      c.stats.update(row, naturalness=float(logq[:, c.ids[0]].mean()) if len(c.ids) == 1 else float("nan"))
    return
  s_val = np.stack([c.s_val if c.s_val is not None else disc_lib.namer_scores(m.params, m.cfg, val.prep, [c.ids])[0]
                    for c in cands])
  a, b, loss = opt_lib.fit_calibration(s_val, val.target_B, disc.max_scale if disc.calibrate else None)
  pos = val.positive_B
  with_test = [i for i, c in enumerate(cands) if multi_heldout or len(c.ids) == 1]
  s_test = disc_lib.namer_scores(m.params, m.cfg, heldout.prep, [cands[i].ids for i in with_test])
  for j, i in enumerate(with_test):
    _heldout_figures(cands[i], a[i], b[i], s_test[j], heldout)
  for i, c in enumerate(cands):
    c.stats.update(val_loss=float(loss[i]), val_auc=float(evaluation.roc_auc(s_val[i], pos)),
                   naturalness=float(s_val[i][pos].mean()), scale=float(a[i]), bias=float(b[i]))


def ensure_heldout(m, disc, c: Candidate, heldout) -> None:
  """Held-out figures for a candidate scored on validation only (a namer two-token label), with its calibration."""
  if "auc" in c.stats:
    return
  s = disc_lib.namer_scores(m.params, m.cfg, heldout.prep, [c.ids])[0]
  _heldout_figures(c, c.stats["scale"], c.stats["bias"], s, heldout)


def _heldout_figures(c: Candidate, scale: float, bias: float, s_test_B: np.ndarray, heldout) -> None:
  """A namer candidate's held-out figures and calibrated probabilities, from its calibration on validation."""
  logit = evaluation.calibrated_logit(scale, bias, s_test_B)
  c.stats.update(evaluation.metrics_from_logits(logit, heldout.positive_B))
  c.p_test = evaluation.sigmoid(logit)


def typicality(m, feature, val, cands: Sequence[Candidate], disc: disc_lib.DiscriminatorConfig,
               whole_words: bool = True) -> np.ndarray:
  """The reverse direction: how much each label raises the probability of the positive words after it, under a
  likelihood prompt ("Examples of<label>: <word>") against a neutral label. A member label explains only the
  positives like itself ("Examples of tank: barrel" is odd), a category's name explains them all. C values:
  the mean over positive validation examples of log P(word | label) - log P(word | neutral label).
  `whole_words=False` reads only each word's first token (when the label prompt is shared: no pass per word).
  """
  pos = [e for e in val.examples if e.positive]
  texts = example_texts(feature, pos, disc)
  plans = [disc_lib.token_plan(disc, m.tokenizer, t, 1) for t in texts]
  if len({tuple(p) for p, _, _ in plans}) == 1:
    return _typicality_shared_prompt(m, plans, cands, disc, whole_words)
  return _typicality_prepared(m, texts, cands, disc)


def _typicality_shared_prompt(m, plans, cands: Sequence[Candidate], disc, whole_words: bool = True) -> np.ndarray:
  """When every positive's prompt up to the label is the same (the word comes only after it), each label's prompt
  "... Examples of<label>:" runs once and every word is read after it: one short pass per label, plus the words'
  own tokens for words of several tokens, instead of a pass per (label, word)."""
  prefix = list(plans[0][0])
  words, glue = [], None
  for _, suffix, readouts in plans:
    word = [t for _, t, _ in readouts]
    words.append(word)
    g = tuple(suffix[:len(suffix) - len(word)])
    if glue not in (None, g):
      raise ValueError("the typicality prompt's text between label and word differs between examples")
    glue = g
  neutral = m.tokenizer.encode(disc.neutral_label)[:1]
  labels = [tuple(neutral)] + [tuple(c.ids) for c in cands]
  # Each distinct word is read once and weighted by how often it occurs: the same mean over examples, and a word of
  # several tokens (the costly kind: its tokens run once per label) no longer runs once per occurrence.
  distinct, count = np.unique(np.array([" ".join(map(str, w)) for w in words]), return_counts=True)
  words = [[int(t) for t in d.split()] for d in distinct]
  weight = count / count.sum()
  # Words of one token are read off the label prompt's last position; only the longer ones run their own tokens.
  multi = [i for i, w in enumerate(words) if len(w) > 1 and whole_words]
  M, N = _round_up(max(len(multi), 1), 8), _round_up(max([len(words[i]) for i in multi] + [2]), 2)
  rest_MxN = np.zeros((M, N), np.int32)
  valid_MxN = np.zeros((M, N), bool)
  for r, i in enumerate(multi):
    rest_MxN[r, :len(words[i])], valid_MxN[r, :len(words[i])] = words[i], True
  first = np.asarray([w[0] for w in words] + [words[-1][0]] * (_round_up(len(words), 32) - len(words)), np.int32)
  head = disc_lib.MEMO.for_model(m.params).head(m.params, m.cfg, tuple(prefix))  # once per model, not per call
  logp = np.zeros(len(labels))
  for n in sorted({len(l) for l in labels}):
    idx = [i for i, l in enumerate(labels) if len(l) == n]
    own = [list(labels[i]) + list(glue) for i in idx]  # unpadded: each padded label would cost a full pass
    first_PxW, rest_PxM = _word_logprobs(m.params, m.cfg, head, jnp.asarray(own, jnp.int32),
                                         jnp.asarray(first), jnp.asarray(rest_MxN), jnp.asarray(valid_MxN), bool(multi))
    s_PxW = np.array(first_PxW)[:, :len(words)]
    if multi:
      s_PxW[:, multi] += np.asarray(rest_PxM)[:, :len(multi)]
    logp[idx] = s_PxW @ weight
  return logp[1:] - logp[0]


@functools.partial(jax.jit, static_argnums=(1, 7))
def _word_logprobs(params, cfg, head, own_PxO, first_W, words_MxN, valid_MxN, with_rest=True):
  """For P label prompts (a shared head's cache, then each label and the glue before the word): log P(first token)
  of each of W words (P x W), and for M longer words the log-probability of their other tokens, teacher-forced (P x M;
  None without `with_rest`: the per-label loop of small passes costs seconds even for few words)."""
  H, (P, O), (M, N) = head.length, own_PxO.shape, words_MxN.shape
  h, own, _ = model_lib.forward(params, cfg, model_lib.embed(params, own_PxO),
                                jnp.broadcast_to(H + jnp.arange(O), (P, O)),
                                None, head)
  own = model_lib.KVCache(own.k_LxBxTxKxE[:, :, H:], own.v_LxBxTxKxE[:, :, H:], own.valid_BxT[:, H:])
  first_PxW = jax.nn.log_softmax(model_lib.logits(params, h[:, -1]), axis=-1)[:, first_W]

  def rest(p):  # each longer word's tokens after its first, read after the ones before them
    take = lambda a, axis: jax.lax.dynamic_slice_in_dim(a, p, 1, axis=axis)
    row = model_lib.KVCache(take(own.k_LxBxTxKxE, 1), take(own.v_LxBxTxKxE, 1), take(own.valid_BxT, 0))
    hw, _, _ = model_lib.forward(params, cfg, model_lib.embed(params, words_MxN[:, :-1]),
                                 jnp.broadcast_to(H + O + jnp.arange(N - 1), (M, N - 1)), valid_MxN[:, :-1],
                                 (head, row))
    logp = jax.nn.log_softmax(model_lib.logits(params, hw), axis=-1)
    tok = jnp.take_along_axis(logp, words_MxN[:, 1:, None], axis=-1)[..., 0]
    return jnp.sum(jnp.where(valid_MxN[:, 1:], tok, 0.0), axis=-1)

  return first_PxW, jax.lax.map(rest, jnp.arange(P)) if with_rest else None


def _typicality_prepared(m, texts, cands: Sequence[Candidate], disc: disc_lib.DiscriminatorConfig) -> np.ndarray:
  """The general case (the prompt before the label differs by example): each (label, word) prompt scored by the
  discriminator. Two-token labels run with two slots, measured against the one-slot neutral label."""
  n_pos = len(texts)
  # Padded to whole chunks of examples (the last text repeated, its scores dropped) and to a fixed number of labels:
  # features with other counts of positives or finalists reuse one compiled scoring step instead of compiling anew.
  texts = texts + texts[-1:] * (_round_up(n_pos, 32) - n_pos)
  out = np.full(len(cands), np.nan)
  base_B = None
  for n in sorted({len(c.ids) for c in cands}):
    # The n-slot preparation needs an n-token neutral label; its baseline is replaced by the one-slot one.
    neutral = m.tokenizer.decode(m.tokenizer.encode(disc.neutral_label)[:1] * n)
    prep = disc_lib.prepare(m.params, m.cfg, m.tokenizer, dataclasses.replace(disc, neutral_label=neutral), texts, n)
    if base_B is None:
      base_B = prep.baseline_B if n == 1 else disc_lib.prepare(m.params, m.cfg, m.tokenizer, disc, texts).baseline_B
    prep = dataclasses.replace(prep, baseline_B=base_B)
    idx = [i for i, c in enumerate(cands) if len(c.ids) == n]
    ids = [cands[i].ids for i in idx]
    ids += ids[-1:] * (_round_up(len(ids), 4) - len(ids))
    s_CxB = np.asarray(disc_lib.hard_scores(m.params, m.cfg, disc, prep, jnp.asarray(ids, jnp.int32)))
    out[idx] = s_CxB[:len(idx), :n_pos].mean(1)
  return out


def finalists(cands: Sequence[Candidate], scfg: SelectConfig = SelectConfig()) -> list[int]:
  """Indices of the candidates that compete on typicality: the best `typical_top` by validation loss, within
  `margin` of the best."""
  loss = np.asarray([c.stats["val_loss"] for c in cands])
  order = [int(i) for i in np.argsort(loss, kind="stable")[:max(1, scfg.typical_top)]]
  return [i for i in order if loss[i] <= loss.min() + scfg.margin]


def choose(cands: Sequence[Candidate], scfg: SelectConfig = SelectConfig()) -> int:
  """Index of the chosen candidate: among the finalists, the one with the highest typicality (stats["typicality"],
  see `typicality`); the lowest validation loss when typicality was not measured."""
  fin = finalists(cands, scfg)
  typ = [cands[i].stats.get("typicality", float("nan")) for i in fin]
  if not np.isfinite(typ).any():
    return fin[0]
  return fin[int(np.nanargmax(typ))]


RULES = ("coverage", "set_namer", "ask", "typicality")


def default_rule(cfg, chat: bool = True, propose_with: str = "") -> str:
  """The measured rule per model size (experiments/models/README.md, experiments/naming/README.md): on the naming
  benchmark's tuning half the coverage rule named 57 of 108 categories with SmolLM2-135M and 40 with
  Qwen2.5-Coder-0.5B (the set namer rule 24 there). Models of 1B parameters and more (counting the MLP weights) get
  the ask rule where they have a chat template: with Qwen2.5-Coder-1.5B it named 71 of the 132 categories of the
  fresh set, declared before any of it was labeled, against the set namer rule's 49. Without a chat template, or
  with the explainer's proposals (whose settings were chosen for it), they get the set namer rule."""
  if cfg.n_layers * cfg.dim * cfg.hidden_dim * 3 < 1e9:
    return "coverage"
  return "ask" if chat and propose_with != "explainer" else "set_namer"


# The set namer rule's settings for the combination (--propose_with=explainer), chosen among a declared family on the
# naming benchmark's tuning half (experiments/explainer/rules.py, experiments/explainer/README.md).
# answers_above_chance was added on 2026-12-04, after the first 32 SAE latents showed the rule taking answers that
# separate nothing ("commonality", "feature"): a condition with no setting of its own (the label's own chance test).
COMBINATION = {"set_margin": 0.05, "answers_first": True, "answers_above_chance": True}


def for_model(scfg: SelectConfig, cfg, chat: bool = True) -> SelectConfig:
  """`scfg` with what was left to the model filled in: its rule where "" (`chat`: whether its tokenizer has a chat
  template), and the set namer rule's margin, answers_first and answers_above_chance where None (the combination's
  with the explainer's proposals, else none)."""
  if scfg.rule and scfg.rule not in RULES:
    raise UserError(f"unknown selection rule {scfg.rule!r}", f"use one of {', '.join(RULES)}")
  left = (COMBINATION if scfg.propose_with == "explainer"
          else {"set_margin": None, "answers_first": False, "answers_above_chance": False})
  filled = {k: left[k] if getattr(scfg, k) is None else getattr(scfg, k) for k in left}
  return dataclasses.replace(scfg, rule=scfg.rule or default_rule(cfg, chat, scfg.propose_with), **filled)


def choose_label(m, disc: disc_lib.DiscriminatorConfig, feature: data_lib.Feature, lcfg: opt_lib.LabelConfig,
                 sp: dict[str, Split], train_prep: disc_lib.Prepared, cands: list[Candidate], mask_V: np.ndarray,
                 scfg: SelectConfig = SelectConfig(), answers: Sequence[str] = ()) -> Candidate:
  """Where a label is chosen. The candidates (from `gather`) are scored exactly, in place, and the run's rule picks
  one: the coverage rule for the namer (`_coverage_rule`; margin 0 turns it off), else typicality among the finalists
  (`choose`), else the lowest validation loss. The chosen one gets its held-out figures (`ensure_heldout`).
  `sp` holds the train, val and heldout Splits; `train_prep` the training examples' prepared prompts; `answers`
  the explainer's answers in answer order (the set namer rule's `answers_first`)."""
  scfg = for_model(scfg, m.cfg, m.tokenizer.has_chat_template)
  if scfg.rule == "coverage" and disc.kind == "namer" and scfg.margin > 0:  # margin 0: the lowest validation loss
    chosen = cands[_coverage_rule(m, disc, feature, lcfg, sp, train_prep, cands, mask_V, scfg)]
  elif scfg.rule == "set_namer" and disc.kind == "namer" and scfg.margin > 0:
    chosen = cands[_set_namer_rule(m, disc, feature, lcfg, sp, cands, scfg, answers)]
  elif scfg.rule == "ask" and disc.kind == "namer" and scfg.margin > 0:
    chosen = cands[_ask_rule(m, disc, feature, lcfg, sp, cands, scfg)]
  else:
    score(m, disc, cands, sp["val"], sp["heldout"])
    fin = finalists(cands, scfg)
    if len(fin) > 1 and scfg.typical_disc:
      typ = typicality(m, feature, sp["val"], [cands[i] for i in fin], disc_lib.get(scfg.typical_disc))
      for i, t in zip(fin, typ):
        cands[i].stats["typicality"] = float(t)
    chosen = cands[choose(cands, scfg)]
  ensure_heldout(m, disc, chosen, sp["heldout"])
  return chosen


def _set_namer_rule(m, disc: disc_lib.DiscriminatorConfig, feature: data_lib.Feature, lcfg: opt_lib.LabelConfig,
                    sp: dict[str, Split], cands: list[Candidate], scfg: SelectConfig, answers: Sequence[str] = ()
                    ) -> int:
  """The set namer rule (namer): every candidate is scored; among the best `coverage_top` single tokens by
  validation loss, and every proposal from outside (the explainer's, of any length), the one the set namer finds
  likeliest as the kind of sets of four positive training words (`coverage.set_scores`); the lowest validation loss
  when the feature has fewer than four positive words. The signal is kept in each compared candidate's stats."""
  score(m, disc, cands, sp["val"], sp["heldout"])
  above = [not scfg.answers_above_chance
           or split_lower_bound(c.stats["val_auc"], sp["val"], disc) > scfg.min_auc_lower for c in cands]
  compared = compared_by_set_namer([len(c.ids) for c in cands], [c.stats["val_loss"] for c in cands],
                                   [c.source for c in cands], scfg.coverage_top, above)
  set_C = coverage.set_scores(m, feature, lcfg.threshold, scfg.set_sets, [cands[i].ids for i in compared])
  for i, v in zip(compared, set_C):
    cands[i].stats["set_pos"] = float(v)
  return compared[set_namer_choice([cands[i].text for i in compared], [cands[i].stats["val_loss"] for i in compared],
                                   set_C, answers, scfg.set_margin, scfg.answers_first, [above[i] for i in compared])]


def _ask_rule(m, disc: disc_lib.DiscriminatorConfig, feature: data_lib.Feature, lcfg: opt_lib.LabelConfig,
              sp: dict[str, Split], cands: list[Candidate], scfg: SelectConfig) -> int:
  """The ask rule (namer): every candidate is scored; among the best `coverage_top` single tokens (and two-token
  extensions, with `extend_top`) by validation loss (one per word) within `ask_margin` of the lowest, the one the
  model, asked in its chat format, likes best as the name of the feature's positive words (`coverage.ask_scores`);
  the lowest validation loss where the feature has no positive words. Each answer is scored with its end, so that
  the first piece of a longer answer does not win (experiments/naming/chooser.py, `ask_end~0.2`: 57 of 108 tuning
  categories, 61 of 117 test categories and 71 of the 132 fresh ones, against the set namer rule's 44, 54 and 49).
  Only answers that can be among the best 1 + RUNNERS_UP are run (`ask_scores(best_only=...)`): the others are kept
  with "ask_bounded" instead of a score."""
  if not m.tokenizer.has_chat_template:
    raise UserError("the ask rule asks the model in its chat format, and this model's tokenizer has no chat template",
                    "use an instruct model, or --select_rule=set_namer or --select_rule=coverage")
  score(m, disc, cands, sp["val"], sp["heldout"])
  # Two-token extensions compete too when they were asked for (--extend_top): the question scores a whole answer
  # of any length, so ' body' + ' part' is weighed as "Body part", not as its first piece.
  answers = [i for i, c in enumerate(cands) if len(c.ids) == 1 or (scfg.extend_top and c.source == "extension")]
  compared = [answers[j] for j in coverage.one_per_word([cands[i].text for i in answers],
                                                         [cands[i].stats["val_loss"] for i in answers])]
  compared = compared[:scfg.coverage_top]
  loss = [cands[i].stats["val_loss"] for i in compared]
  near = [i for i, v in zip(compared, loss) if v <= min(loss) + scfg.ask_margin]
  words = coverage.ask_words(feature, lcfg.threshold)
  if not words:
    return compared[0]
  got = coverage.ask_scores(m, words, [cands[i].text for i in near], end=True, best_only=1 + RUNNERS_UP)
  for i, v in zip(near, got):  # a label whose first token alone is less likely than the 5th answer gets no score
    cands[i].stats.update({"ask": float(v)} if np.isfinite(v) else {"ask_bounded": 1.0})
  return near[coverage.ask_choice([cands[i].stats["val_loss"] for i in near], got, scfg.ask_margin)]


def compared_by_set_namer(lengths: Sequence[int], val_loss: Sequence[float], sources: Sequence[str], top: int,
                          usable: Sequence[bool] | None = None) -> list[int]:
  """Indices of the candidates the set namer rule compares, in its order: the best `top` single tokens by validation
  loss, then every explainer proposal (with `usable`, those it marks). Pure, so experiments/explainer/rules.py
  applies it to stored rows."""
  singles = sorted((i for i, n in enumerate(lengths) if n == 1), key=lambda i: val_loss[i])
  return singles[:top] + [i for i, s in enumerate(sources) if s == "explainer" and (usable is None or usable[i])]


def set_namer_choice(texts: Sequence[str], val_loss_C: Sequence[float], set_C: Sequence[float],
                     answers: Sequence[str] = (), margin: float | None = None, answers_first: bool = False,
                     usable_C: Sequence[bool] | None = None) -> int:
  """Index of the chosen one of the compared candidates (the best single token by validation loss first). Only those
  within `margin` of the lowest validation loss compete (None: all). With `answers_first`, the explainer's earliest
  answer (`answers` in answer order, the greedy one first) among them wins, matched by text with case and spacing
  ignored, where `usable_C` (None: all) marks the candidate usable as an answer; else the highest set-namer score;
  the first candidate when no set-namer score is known. A pure function of what result.json stores, so
  experiments/explainer/rules.py re-scores stored runs with it."""
  loss_C, set_C = np.asarray(val_loss_C, np.float64), np.asarray(set_C, np.float64)
  near_C = loss_C <= loss_C.min() + (np.inf if margin is None else margin)
  usable_C = np.ones(len(texts), bool) if usable_C is None else np.asarray(usable_C, bool)
  if answers_first:
    norm = [t.strip().lower() for t in texts]
    for a in answers:
      hits = [i for i, t in enumerate(norm) if t == a.strip().lower() and near_C[i] and usable_C[i]]
      if hits:
        return hits[0]
  ok_C = near_C & np.isfinite(set_C)
  return int(np.argmax(np.where(ok_C, set_C, -np.inf))) if ok_C.any() else 0


def _coverage_rule(m, disc: disc_lib.DiscriminatorConfig, feature: data_lib.Feature,
                   lcfg: opt_lib.LabelConfig, sp: dict[str, Split], train_prep: disc_lib.Prepared,
                   cands: list[Candidate], mask_V: np.ndarray, scfg: SelectConfig) -> int:
  """The coverage rule (namer): the best 16 tokens by log-rank gap join the candidates (in place) and all are
  scored; the best `coverage_pool` single tokens by validation loss and up to 8 of the log-rank ones after them are
  compared, and among the best `coverage_top` of those by validation loss the one that covers the positives best is
  chosen (`coverage.coverage_choice`). The signals are kept in each compared candidate's stats."""
  logq = np.concatenate([np.asarray(train_prep.logq_BxV), np.asarray(sp["val"].prep.logq_BxV)])
  lrg_V = coverage.log_rank_gap(logq, np.concatenate([sp["train"].positive_B, sp["val"].positive_B]), mask_V)
  have = {c.ids[0] for c in cands if len(c.ids) == 1}
  cands += [Candidate((int(t),), m.tokenizer.token_str(int(t)), "coverage")
            for t in np.argsort(-lrg_V)[:16] if int(t) not in have]
  score(m, disc, cands, sp["val"], sp["heldout"])
  order = [i for i in sorted(range(len(cands)), key=lambda i: cands[i].stats["val_loss"]) if len(cands[i].ids) == 1]
  compared = order[:scfg.coverage_pool] + [i for i in order[scfg.coverage_pool:]
                                           if cands[i].source == "coverage"][:8]
  pos = [e for s in ("val", "train") for e in sp[s].examples if e.positive]
  padded = [cands[i] for i in compared] + [cands[compared[-1]]] * (scfg.coverage_pool + 8 - len(compared))
  typ = (typicality(m, feature, Split(pos, None, np.ones(len(pos), np.float32)), padded,  # one shape
                    disc_lib.get(scfg.typical_disc), whole_words=False)
         if scfg.typical_disc else np.full(len(padded), np.nan))  # no typicality prompt: that signal counts 0
  set_V = coverage.set_namer(m, coverage.word_sets(coverage.positive_words(feature, lcfg.threshold), scfg.set_sets, 0))
  for i, t in zip(compared, typ):
    tok = cands[i].ids[0]
    cands[i].stats.update(lrg=float(lrg_V[tok]), typ_all=float(t), set_pos=float(set_V[tok]))
  signals = {k: np.asarray([cands[i].stats[k] for i in compared]) for k in scfg.coverage_signals}
  loss = np.asarray([cands[i].stats["val_loss"] for i in compared])
  return compared[coverage.coverage_choice(loss, signals, scfg.coverage_top)]


def split_lower_bound(auc: float, split: Split, disc: disc_lib.DiscriminatorConfig) -> float:
  """`auc_lower_bound` of an AUC that `disc` measured on `split`, counting the independent scores it holds: a token
  drawn again adds none, nor, for a discriminator that reads only the word, another token of the same word
  (`Split.effective_counts`)."""
  return auc_lower_bound(auc, *split.effective_counts(by_word=not disc.reads_context))


def auc_lower_bound(auc: float, n_pos: int, n_neg: int, chance_floor: bool = True) -> float:
  """One-sided 95% lower bound of an AUC: is the label better than chance? Hanley & McNeil's standard error, never
  taken below the spread an AUC has by chance alone at these counts (Mann-Whitney's null variance, (n_pos + n_neg + 1)
  / (12 n_pos n_neg)). Their large-sample formula shrinks to 0 as the AUC nears 1 and is too small when the positives
  are few: with one distinct positive token among 32 negatives, 12% of labels with random scores passed, 3% with the
  floor (5% nominal). `chance_floor=False`: the bound without the floor, as every run before it was added (late on
  2026-12-06) was decided."""
  if not np.isfinite(auc) or not n_pos or not n_neg:
    return float("nan")
  q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
  var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
  if chance_floor:
    var = max(var, (n_pos + n_neg + 1) / (12 * n_pos * n_neg))
  return float(auc - 1.645 * np.sqrt(max(var, 0.0)))


STORED_TOP = 40  # candidates a result.json keeps by validation loss (besides every outside proposal)
RUNNERS_UP = 4  # the candidates a result names after its label, in the order of the rule that chose it


def runners_up(cands: Sequence[Candidate], chosen: Candidate, scfg: SelectConfig) -> list[Candidate]:
  """What the rule that chose `chosen` ranks next, best first, one per word (its plural skipped): by the ask score
  (ask rule), the z-summed signals (coverage rule), the set namer's score within its margin (set namer rule), else
  by validation loss. A person reads the label with them: the category's name is often among them when the label
  misses it (experiments/naming/README.md, "The label's runners-up"). `scfg` as `for_model` fills it."""
  if scfg.rule == "ask" and any("ask" in c.stats for c in cands):
    order = sorted((c for c in cands if "ask" in c.stats), key=lambda c: -c.stats["ask"])
  elif scfg.rule == "coverage" and any("lrg" in c.stats for c in cands):
    compared = [c for c in cands if "lrg" in c.stats]
    signals = {k: np.asarray([c.stats[k] for c in compared]) for k in scfg.coverage_signals}
    order = [compared[i] for i in coverage.coverage_order(np.asarray([c.stats["val_loss"] for c in compared]),
                                                          signals, scfg.coverage_top)]
  elif scfg.rule == "set_namer" and any(np.isfinite(c.stats.get("set_pos", np.nan)) for c in cands):
    scored = [c for c in cands if np.isfinite(c.stats.get("set_pos", np.nan))]
    best = min(c.stats["val_loss"] for c in scored) + (np.inf if scfg.set_margin is None else scfg.set_margin)
    order = sorted((c for c in scored if c.stats["val_loss"] <= best), key=lambda c: -c.stats["set_pos"])
  else:
    order = sorted(cands, key=lambda c: c.stats.get("val_loss", np.inf))
  seen, out = naming.inflections(chosen.text), []
  for c in order:  # a word's plural adds nothing for a reader: ' drink' after ' drinks' is skipped
    forms = naming.inflections(c.text)
    if naming.normalize(c.text) not in seen and not forms & seen:
      seen |= forms
      out.append(c)
  return out[:RUNNERS_UP]


def stored_rows(cands: Sequence[Candidate], top: int = STORED_TOP) -> list[dict[str, Any]]:
  """The candidates a result.json keeps ("verification"), by validation loss: the best `top`, then every proposal
  from outside and every candidate the ask rule asked about ranked below them, so that a choice rule can be
  re-scored from the file alone (experiments/explainer/rules.py)."""
  ranked = sorted(cands, key=lambda c: c.stats["val_loss"])
  return [summary_row(c) for c in ranked[:top] + [c for c in ranked[top:] if c.source == "explainer"
                                                  or "ask" in c.stats or "ask_bounded" in c.stats]]


def summary_row(c: Candidate) -> dict[str, Any]:
  return {"label": c.text, "token_ids": list(c.ids), "source": c.source, **c.stats}
