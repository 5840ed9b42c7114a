"""Discriminators: how a frozen model judges whether a label fits a highlighted token.

Each formulation is configuration (templates with placeholders, answer tokens, a neutral label) plus one caching plan:
the prompt is split at the label slot; everything before it is example-specific but label-independent, so its KV cache
(and the model's next-token log-probabilities at the slot) are computed once per example. What depends on the label
(the slot and the short suffix after it) runs every step, with gradients.

- judge: the paper's prompt. Text, highlighted token, label, a question; score = logit("1") - logit("0") at the end.
- likelihood: "... examples of <label>: <word>"; score = log P(word | label) - log P(word | neutral label).
- namer: "... <word> is a kind of <label>"; score = log P(label | word). For one label token it is linear in p:
  score_i = p . log q_i, with q_i computed once, so the whole vocabulary can be scored exactly.

Placeholders in templates: {word} (the highlighted token as text), {context} (the text window around it, the token
marked with [[ ]]), {label} (the label slot; exactly once).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tokenlabel_jax import model as model_lib
from tokenlabel_jax.config import ModelConfig
from tokenlabel_jax.errors import UserError

LABEL = "{label}"


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
  """A formulation and its templates. `kind` picks the scoring rule; the text is free to change."""

  name: str
  kind: str  # "judge" | "likelihood" | "namer"
  template: str  # the whole prompt, with {label} once; text after {label} is the suffix
  chat: bool = False  # wrap `template` as the user turn of the model's chat template (judge)
  answer_tokens: tuple[str, str] = ("1", "0")  # judge: (yes, no)
  neutral_label: str = " things"  # likelihood: the baseline label
  calibrate: bool = True  # learn a bounded scale and a bias per feature (see objective.calibrated_logit)
  max_scale: float = 1.0
  context_before: int = 24  # subject tokens shown before/after the highlighted one (for {context})
  context_after: int = 8


_JUDGE_TEXT = (
    "Here is a text with one token marked by [[ ]].\n\nText: {context}\nMarked token: {word}\n\n"
    "Is the marked token an example of the concept \"{label}\"? Answer with 1 for yes or 0 for no.")

# Few-shot lines. Their categories (music, rock, day) are kept out of experiments/concepts.json, so the examples
# cannot hand the answer to a concept the defaults are chosen on.
_LIST_SHOTS = "Examples of music: jazz, opera, blues, reggae.\nExamples of rock: granite, basalt, marble.\n"
_KIND_SHOTS = "jazz is a kind of music.\ngranite is a kind of rock.\nMonday is a kind of day.\n"

PRESETS: dict[str, DiscriminatorConfig] = {
    # The paper's judge: zero-shot yes/no through the chat template (instruct models: Llama-3-Instruct).
    "judge": DiscriminatorConfig(name="judge", kind="judge", template=_JUDGE_TEXT, chat=True, calibrate=False),
    # Likelihood ratio: the label stays an input embedding, as in the paper, but scored by likelihood.
    "likelihood": DiscriminatorConfig(name="likelihood", kind="likelihood",
                                      template=_LIST_SHOTS + "Examples of{label}: {word}"),
    "likelihood_context": DiscriminatorConfig(
        name="likelihood_context", kind="likelihood",
        template=_LIST_SHOTS + "In the text \"{context}\", the marked word is one of the examples of{label}: {word}"),
    # Namer: the label is what the model would write after the word.
    "namer": DiscriminatorConfig(name="namer", kind="namer", template=_KIND_SHOTS + "{word} is a kind of{label}"),
    "namer_context": DiscriminatorConfig(
        name="namer_context", kind="namer",
        template=_KIND_SHOTS + "Text: {context}\nThe marked word, {word}, is a kind of{label}"),
}


def get(name: str) -> DiscriminatorConfig:
  if name not in PRESETS:
    raise UserError(f"unknown discriminator {name!r}", f"use one of {', '.join(PRESETS)}")
  return PRESETS[name]


def default_for(tokenizer, cfg: ModelConfig) -> str:
  """Measured defaults (README, 'Discriminators'): the 135M model is at chance as a judge; namer works on it."""
  small = cfg.dim < 1024
  return "namer" if small or not tokenizer.has_chat_template else "judge"


@dataclasses.dataclass(frozen=True)
class ExampleText:
  word: str  # the highlighted token as a reader sees it
  context: str  # the window around it with the token marked


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Prepared:
  """Label-independent tensors for N examples (padded): computed once, reused every step.

  The prefix cache is split in two: `shared` holds the prompt head that every example has in common (few-shot lines,
  chat header: one row, stored once), `cache` each example's own remainder. Attending to both in order is the same
  as attending to the whole prefix.
  """

  shared: model_lib.KVCache  # keys/values of the common head, 1 row
  cache: model_lib.KVCache  # each example's own prefix keys/values after the head, B rows
  prefix_len_B: jax.Array  # head + own prefix: the label slot's position
  logq_BxV: jax.Array  # log next-token distribution at the label slot
  suffix_ids_BxS: jax.Array
  suffix_valid_BxS: jax.Array
  readout_pos_BxR: jax.Array  # index (within slots + suffix) whose output predicts readout_tok
  readout_tok_BxR: jax.Array
  readout_w_BxR: jax.Array
  baseline_B: jax.Array  # subtracted from every score (likelihood: the neutral label's score)


def _render(disc: DiscriminatorConfig, tokenizer, ex: ExampleText) -> tuple[str, str]:
  text = disc.template.replace("{word}", ex.word).replace("{context}", ex.context)
  if text.count(LABEL) != 1:
    raise UserError(f"template of discriminator {disc.name!r} must contain {LABEL} exactly once",
                    "fix the template")
  if disc.chat:
    sentinel = "\x01LABEL\x01"
    full = tokenizer.chat([{"role": "user", "content": text.replace(LABEL, sentinel)}], add_generation_prompt=True)
    prefix, suffix = full.split(sentinel)
    return prefix, suffix
  prefix, suffix = text.split(LABEL)
  return prefix, suffix


def token_plan(disc: DiscriminatorConfig, tokenizer, ex: ExampleText, n_slots: int
               ) -> tuple[list[int], list[int], list[tuple[int, int, float]]]:
  """(prefix ids, suffix ids, readout (position, token, weight)) for one example; position counts slots first."""
  prefix, suffix = _render(disc, tokenizer, ex)
  prefix_ids = tokenizer.encode(prefix)
  if disc.kind == "judge":
    suffix_ids = tokenizer.encode(suffix)
    yes, no = (_single_token(tokenizer, a) for a in disc.answer_tokens)
    last = n_slots + len(suffix_ids) - 1
    return prefix_ids, suffix_ids, [(last, yes, 1.0), (last, no, -1.0)]
  if disc.kind == "likelihood":
    if not suffix.endswith(ex.word):
      raise UserError(f"the template of discriminator {disc.name!r} must end with {{word}}",
                      "put {word} last: the likelihood discriminator scores the word given the label")
    glue, word = suffix[:len(suffix) - len(ex.word)], ex.word
    if glue.endswith(" "):  # ": dog" tokenizes as ":" + " dog": the space belongs to the word's first token
      glue, word = glue[:-1], " " + word
    glue_ids, word_ids = tokenizer.encode(glue), tokenizer.encode(word)
    if not word_ids:
      word_ids = tokenizer.encode(" ")
    suffix_ids = glue_ids + word_ids
    start = n_slots + len(glue_ids)  # index of the first word token in slots+suffix
    return prefix_ids, suffix_ids, [(start + j - 1, t, 1.0) for j, t in enumerate(word_ids)]
  if disc.kind == "namer":
    return prefix_ids, [], []
  raise UserError(f"unknown discriminator kind {disc.kind!r}", "use judge, likelihood or namer")


def _single_token(tokenizer, text: str) -> int:
  ids = tokenizer.encode(text)
  if len(ids) != 1:
    raise UserError(f"answer token {text!r} is {len(ids)} tokens for this tokenizer", "choose single-token answers")
  return ids[0]


def _pad(rows: Sequence[Sequence[Any]], fill, dtype) -> np.ndarray:
  width = max(1, max(len(r) for r in rows))
  out = np.full((len(rows), width), fill, dtype)
  for i, r in enumerate(rows):
    out[i, :len(r)] = r
  return out


def prepare(params, cfg: ModelConfig, tokenizer, disc: DiscriminatorConfig, examples: Sequence[ExampleText],
            n_slots: int = 1, chunk: int = 32) -> Prepared:
  """Tokenizes every example's prompt and runs its prefix once (no gradients): the common head once for all."""
  return prepare_splits(params, cfg, tokenizer, disc, [examples], n_slots, chunk)[0]


def prepare_splits(params, cfg: ModelConfig, tokenizer, disc: DiscriminatorConfig,
                   splits: Sequence[Sequence[ExampleText]], n_slots: int = 1, chunk: int = 32) -> list[Prepared]:
  """`prepare` for several lists of examples (train, validation, held-out) with one prefix pass over all of them, so
  a prompt that recurs across lists (a frequent word, for the namer) runs once."""
  plans = [[token_plan(disc, tokenizer, ex, n_slots) for ex in exs] for exs in splits]
  every = [plan for ps in plans for plan in ps]
  longest = max(len(p) + n_slots + len(s) for p, s, _ in every)
  if longest > cfg.max_seq_len:
    raise UserError(f"a discriminator prompt is {longest} tokens, longer than the model's context {cfg.max_seq_len}",
                    "show less text around the token (smaller context window) or use a shorter template")
  neutral_1xN = None  # the likelihood ratio's baseline label, scored on every example
  if disc.kind == "likelihood":
    neutral = tokenizer.encode(disc.neutral_label)
    if len(neutral) != n_slots:
      raise UserError(f"neutral label {disc.neutral_label!r} is {len(neutral)} tokens, the label has {n_slots} slot(s)",
                      "choose a neutral label of the same token length")
    neutral_1xN = jnp.asarray([neutral], jnp.int32)
  head = _common_head([p for p, _, _ in every])
  shared = _head_pass(params, cfg, jnp.asarray([every[0][0][:head]], jnp.int32))
  chunks, where = _own_prefixes(params, cfg, shared, [tuple(p[head:]) for p, _, _ in every], chunk)
  out = []
  for ps in plans:
    cache, logq_BxV = _gather_rows([where[tuple(p[head:])] for p, _, _ in ps], chunks,
                                   max(len(p) - head for p, _, _ in ps))
    readouts = [r for _, _, r in ps]
    prep = Prepared(
        shared=shared, cache=cache, prefix_len_B=jnp.asarray([len(p) for p, _, _ in ps], jnp.int32),
        logq_BxV=logq_BxV,
        suffix_ids_BxS=jnp.asarray(_pad([s for _, s, _ in ps], 0, np.int32)),
        suffix_valid_BxS=jnp.asarray(_pad([[True] * len(s) for _, s, _ in ps], False, bool)),
        readout_pos_BxR=jnp.asarray(_pad([[p for p, _, _ in r] for r in readouts], 0, np.int32)),
        readout_tok_BxR=jnp.asarray(_pad([[t for _, t, _ in r] for r in readouts], 0, np.int32)),
        readout_w_BxR=jnp.asarray(_pad([[w for _, _, w in r] for r in readouts], 0.0, np.float32)),
        baseline_B=jnp.zeros(len(ps), jnp.float32))
    if neutral_1xN is not None:
      prep = dataclasses.replace(prep, baseline_B=hard_scores(params, cfg, disc, prep, neutral_1xN, chunk=chunk)[0])
    out.append(prep)
  return out


def _common_head(prefixes: Sequence[Sequence[int]]) -> int:
  """Tokens every prefix starts with, leaving each at least one token of its own (whose output gives q)."""
  head = min(len(p) for p in prefixes) - 1
  first = prefixes[0]
  for p in prefixes[1:]:
    head = next((i for i in range(head) if p[i] != first[i]), head)
  return max(head, 0)


def _width_bucket(n: int) -> int:
  """n rounded up to a multiple of 8 (to 64), 16 (to 128), 32 (to 256)...: under 8 or n/4 padding tokens, and
  prompts of nearby lengths share one compiled pass."""
  granule = max(8, 2 ** (max(n - 1, 1).bit_length() - 3))
  return -(-n // granule) * granule


def _own_prefixes(params, cfg: ModelConfig, shared: model_lib.KVCache, own: Sequence[tuple[int, ...]], chunk: int
                  ) -> tuple[list[tuple[model_lib.KVCache, jax.Array]], dict[tuple[int, ...], tuple[int, int]]]:
  """Own prefixes after the shared head, each distinct one run once: per chunk, the KV cache and log q at the last
  token; and where each prompt's row is (chunk, row), for `_gather_rows`.

  Identical prompts (the namer's "dog is a kind of" for every "dog") run once. The others run in chunks of `chunk`
  rows sorted by length, each chunk padded only to its own width bucket, so short prompts do not pay for the longest
  one (invalid positions are masked in attention).
  """
  unique = list(dict.fromkeys(own))
  order = sorted(range(len(unique)), key=lambda i: len(unique[i]))
  rows = min(chunk, len(unique))  # a short list runs as one exact chunk; longer ones in full chunks
  chunks, where = [], {}
  for start in range(0, len(order), rows):
    idx = order[start:start + rows]
    w = _width_bucket(len(unique[idx[-1]]))
    ids = np.zeros((rows, w), np.int32)
    lens = np.ones(rows, np.int32)  # padding rows: one token, never read
    for r, i in enumerate(idx):
      ids[r, :len(unique[i])] = unique[i]
      lens[r] = len(unique[i])
      where[unique[i]] = (len(chunks), r)
    valid = np.arange(w)[None] < lens[:, None]
    chunks.append(_prefix_pass(params, cfg, shared, jnp.asarray(ids), jnp.asarray(valid), jnp.asarray(lens)))
  return chunks, where


def _gather_rows(where_B: Sequence[tuple[int, int]], chunks: Sequence[tuple[model_lib.KVCache, jax.Array]], T: int
                 ) -> tuple[model_lib.KVCache, jax.Array]:
  """Each example's (chunk, row) of the computed prompts as one cache of width T (a repeated prompt's row is shared).

  On the CPU backend the arrays already live in host memory: numpy copies each row once into the result, compiling
  nothing (XLA takes ~0.2 s to compile each gather shape) and building no concatenated intermediate. On accelerators
  the gather stays on the device.
  """
  first = chunks[0][0]
  if all(d.platform == "cpu" for d in first.k_LxBxTxKxE.devices()):
    L, _, _, K, E = first.k_LxBxTxKxE.shape
    B = len(where_B)
    k = np.zeros((L, B, T, K, E), first.k_LxBxTxKxE.dtype)
    v = np.zeros_like(k)
    valid = np.zeros((B, T), bool)
    logq = np.empty((B, chunks[0][1].shape[-1]), chunks[0][1].dtype)
    for c, (cache, lq) in enumerate(chunks):
      out = [b for b, (cc, _) in enumerate(where_B) if cc == c]
      if not out:
        continue
      src = [where_B[b][1] for b in out]
      w = min(T, cache.valid_BxT.shape[1])  # past an example's own length everything is padding
      k[:, out, :w] = np.asarray(cache.k_LxBxTxKxE)[:, src, :w]
      v[:, out, :w] = np.asarray(cache.v_LxBxTxKxE)[:, src, :w]
      valid[out, :w] = np.asarray(cache.valid_BxT)[src, :w]
      logq[out] = np.asarray(lq)[src]
    return model_lib.KVCache(jnp.asarray(k), jnp.asarray(v), jnp.asarray(valid)), jnp.asarray(logq)
  width = max(c.valid_BxT.shape[1] for c, _ in chunks)
  rows = chunks[0][1].shape[0]
  index = jnp.asarray([c * rows + r for c, r in where_B], jnp.int32)
  cat = lambda xs, axis: jnp.take(jnp.concatenate(xs, axis), index, axis=axis)
  cache = model_lib.KVCache(
      cat([_pad_axis(c.k_LxBxTxKxE, 2, width) for c, _ in chunks], 1)[:, :, :T],
      cat([_pad_axis(c.v_LxBxTxKxE, 2, width) for c, _ in chunks], 1)[:, :, :T],
      cat([_pad_axis(c.valid_BxT, 1, width, False) for c, _ in chunks], 0)[:, :T])
  return cache, cat([lq for _, lq in chunks], 0)


@jax.jit(static_argnums=1)
def _head_pass(params, cfg, ids_1xH):
  _, cache, _ = model_lib.forward(params, cfg, model_lib.embed(params, ids_1xH), jnp.arange(ids_1xH.shape[1])[None])
  return cache


@jax.jit(static_argnums=1)
def _prefix_pass(params, cfg, shared, ids_BxP, valid_BxP, len_B):
  """Own prefixes after the shared head: their keys/values, and log q at their last token."""
  H, (B, P) = shared.length, ids_BxP.shape
  positions_BxP = jnp.broadcast_to(H + jnp.arange(P), (B, P))
  h_BxPxD, cache, _ = model_lib.forward(params, cfg, model_lib.embed(params, ids_BxP), positions_BxP, valid_BxP,
                                        shared)
  own = model_lib.KVCache(cache.k_LxBxTxKxE[:, :, H:], cache.v_LxBxTxKxE[:, :, H:], cache.valid_BxT[:, H:])
  last_BxD = jnp.take_along_axis(h_BxPxD, (len_B - 1)[:, None, None], axis=1)[:, 0]
  return own, jax.nn.log_softmax(model_lib.logits(params, last_BxD), axis=-1)


def _pad_axis(x: jax.Array, axis: int, size: int, fill=0) -> jax.Array:
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, size - x.shape[axis])
  return jnp.pad(x, widths, constant_values=fill)


def stack(preps: Sequence[Prepared]) -> Prepared:
  """Several features' prepared examples -> one Prepared with a leading feature axis, padded to common shapes.

  Padding is inert: padded prefix keys are invalid, padded suffix tokens are invalid, padded readouts weigh 0.
  """
  if len({p.prefix_len_B.shape[0] for p in preps}) != 1:
    raise ValueError("features stacked together need the same number of examples")
  H = max(p.shared.length for p in preps)
  T = max(p.cache.valid_BxT.shape[1] for p in preps)
  S = max(p.suffix_ids_BxS.shape[1] for p in preps)
  R = max(p.readout_pos_BxR.shape[1] for p in preps)
  padded = [Prepared(
      shared=_pad_cache(p.shared, H), cache=_pad_cache(p.cache, T),
      prefix_len_B=p.prefix_len_B, logq_BxV=p.logq_BxV,
      suffix_ids_BxS=_pad_axis(p.suffix_ids_BxS, 1, S), suffix_valid_BxS=_pad_axis(p.suffix_valid_BxS, 1, S, False),
      readout_pos_BxR=_pad_axis(p.readout_pos_BxR, 1, R), readout_tok_BxR=_pad_axis(p.readout_tok_BxR, 1, R),
      readout_w_BxR=_pad_axis(p.readout_w_BxR, 1, R, 0.0), baseline_B=p.baseline_B) for p in preps]
  return jax.tree.map(lambda *xs: jnp.stack(xs), *padded)


def _pad_cache(c: model_lib.KVCache, T: int) -> model_lib.KVCache:
  return model_lib.KVCache(_pad_axis(c.k_LxBxTxKxE, 2, T), _pad_axis(c.v_LxBxTxKxE, 2, T),
                           _pad_axis(c.valid_BxT, 1, T, False))


def empty_cache(cache: model_lib.KVCache) -> model_lib.KVCache:
  """The same rows with no positions: for examples whose scores never read their cache."""
  return model_lib.KVCache(cache.k_LxBxTxKxE[:, :, :0], cache.v_LxBxTxKxE[:, :, :0], cache.valid_BxT[:, :0])


def take_rows(prep: Prepared, rows: jax.Array) -> Prepared:
  """A minibatch of prepared examples (inside jit); the shared head stays as it is."""
  def take(x):
    return jnp.take(x, rows, axis=1 if x.ndim == 5 else 0)
  return dataclasses.replace(jax.tree.map(take, dataclasses.replace(prep, shared=None)), shared=prep.shared)


def scores(params, cfg: ModelConfig, disc: DiscriminatorConfig, prep: Prepared, label_NxV: jax.Array) -> jax.Array:
  """Score per example for a soft label (N slots x vocabulary probabilities); differentiable in `label_NxV`.

  A one-hot `label_NxV` is the hard label; a straight-through label is one-hot forward, soft backward.
  """
  if disc.kind == "namer":
    if label_NxV.shape[0] != 1:
      raise UserError("the namer scores soft labels of one slot", "use --label_slots=1 with the namer")
    return prep.logq_BxV @ label_NxV[0] - prep.baseline_B
  B = prep.prefix_len_B.shape[0]
  N = label_NxV.shape[0]
  slot_BxNxD = jnp.broadcast_to(model_lib.soft_embed(params, label_NxV), (B, N, cfg.dim))
  x_BxSxD = jnp.concatenate([slot_BxNxD, model_lib.embed(params, prep.suffix_ids_BxS)], axis=1)
  S = x_BxSxD.shape[1]
  positions_BxS = prep.prefix_len_B[:, None] + jnp.arange(S)[None]
  valid_BxS = jnp.concatenate([jnp.ones((B, N), bool), prep.suffix_valid_BxS], axis=1)
  h_BxSxD, _, _ = model_lib.forward(params, cfg, x_BxSxD, positions_BxS, valid_BxS, (prep.shared, prep.cache))
  h_BxRxD = jnp.take_along_axis(h_BxSxD, prep.readout_pos_BxR[..., None], axis=1)
  if disc.kind == "judge":
    # The answer weights (+1, -1) at one position sum to zero, so log-softmax's normalizer cancels: the score is a
    # difference of two logits, and the vocabulary-wide head (and its backward) is never computed.
    return jnp.sum(prep.readout_w_BxR * model_lib.token_logits(params, h_BxRxD, prep.readout_tok_BxR), axis=-1) \
        - prep.baseline_B
  logp_BxRxV = jax.nn.log_softmax(model_lib.logits(params, h_BxRxD), axis=-1)
  tok_BxR = jnp.take_along_axis(logp_BxRxV, prep.readout_tok_BxR[..., None], axis=-1)[..., 0]
  return jnp.sum(prep.readout_w_BxR * tok_BxR, axis=-1) - prep.baseline_B


@jax.jit(static_argnums=(1, 2))
def _hard_scores_chunk(params, cfg, disc, prep, label_ids_CxN):
  V = prep.logq_BxV.shape[-1]
  if disc.kind == "namer" and label_ids_CxN.shape[1] > 1:
    return jax.vmap(lambda ids: _namer_multi(params, cfg, prep, ids))(label_ids_CxN)
  return jax.vmap(lambda ids: scores(params, cfg, disc, prep, jax.nn.one_hot(ids, V)))(label_ids_CxN)


def _namer_multi(params, cfg, prep: Prepared, ids_N):
  """log P(t_1..t_N | prefix): the first token from the cached distribution, the rest teacher-forced."""
  B = prep.prefix_len_B.shape[0]
  first = prep.logq_BxV[:, ids_N[0]]
  x_BxSxD = jnp.broadcast_to(model_lib.embed(params, ids_N[:-1]), (B, ids_N.shape[0] - 1, cfg.dim))
  positions = prep.prefix_len_B[:, None] + jnp.arange(ids_N.shape[0] - 1)[None]
  h, _, _ = model_lib.forward(params, cfg, x_BxSxD, positions, None, (prep.shared, prep.cache))
  logp = jax.nn.log_softmax(model_lib.logits(params, h), axis=-1)
  rest = jnp.take_along_axis(logp, jnp.broadcast_to(ids_N[1:], (B, ids_N.shape[0] - 1))[..., None], -1)[..., 0]
  return first + rest.sum(-1) - prep.baseline_B


def hard_scores(params, cfg: ModelConfig, disc: DiscriminatorConfig, prep: Prepared, label_ids_CxN: jax.Array,
                chunk: int = 32) -> jax.Array:
  """Exact scores of C hard labels (token ids, N slots each) on every prepared example: C x B."""
  B = prep.prefix_len_B.shape[0]
  if disc.kind == "namer" and label_ids_CxN.shape[1] == 1:
    return prep.logq_BxV[:, label_ids_CxN[:, 0]].T - prep.baseline_B[None]
  # Bound the work per call: C labels x `chunk` examples at a time.
  rows = []
  for i in range(0, B, chunk):
    sub = take_rows(prep, jnp.arange(i, min(B, i + chunk)))
    rows.append(_hard_scores_chunk(params, cfg, disc, sub, label_ids_CxN))
  return jnp.concatenate(rows, axis=1)


def encode_label(tokenizer, label: str) -> list[int]:
  """A human label as the discriminator sees it: with a leading space, as it follows 'of' / 'is a kind of'."""
  text = label if label.startswith(" ") or _is_cjk(label[:1]) else " " + label
  return tokenizer.encode(text)


def _is_cjk(ch: str) -> bool:
  return bool(ch) and 0x2E80 <= ord(ch) <= 0x9FFF


def word_like_mask(tokenizer, vocab_size: int) -> np.ndarray:
  """Tokens a person would accept as a label: a word start (leading space) of 3+ letters, or CJK characters.

  Word pieces without a leading space ('ozo', 'crit') rank high by accident of tokenization and read as noise.
  """
  cached = getattr(tokenizer, "_word_like_mask", None)
  if cached is not None and cached.shape[0] == vocab_size:
    return cached
  mask = np.zeros(vocab_size, bool)
  for i in range(min(vocab_size, tokenizer.vocab_size)):
    s = tokenizer.token_str(i)
    w = s.strip()
    if not w.isalpha() or any(c in s for c in "\n\t<>"):
      continue
    cjk = any(_is_cjk(c) for c in w)
    mask[i] = cjk or (s.startswith(" ") and s[1:] == w and len(w) >= 3)
  tokenizer._word_like_mask = mask  # decoding 128k tokens takes seconds; once per tokenizer is enough
  return mask
