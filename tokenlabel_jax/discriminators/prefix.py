"""Preparation: the label-independent prefixes of every example's prompt, run once (no gradients) and cached.

The common head (few-shot lines, chat header) runs once for all examples; each distinct own prefix runs once, in
length-sorted chunks padded to a few widths, so that repeated prompts and nearby lengths share work and compilations.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tokenlabel_jax import model as model_lib
from tokenlabel_jax.config import ModelConfig
from tokenlabel_jax.discriminators.rows import Prepared, gather_logq, gather_rows, no_positions
from tokenlabel_jax.discriminators.scoring import hard_scores
from tokenlabel_jax.discriminators.templates import DiscriminatorConfig, ExampleText, token_plan
from tokenlabel_jax.errors import UserError


def _pad(rows: Sequence[Sequence[Any]], fill, dtype) -> np.ndarray:
  """Ragged rows as one array, filled out with `fill` (at least one column)."""
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
                   splits: Sequence[Sequence[ExampleText]], n_slots: int = 1, chunk: int = 32,
                   keep_cache: bool = True, head: int | None = None) -> list[Prepared]:
  """`prepare` for several lists of examples (train, validation, held-out) with one prefix pass over all of them, so
  a prompt that recurs across lists (a frequent word, for the namer) runs once.

  `head`: how many leading tokens every prompt shares (default: their common prefix). A lone prompt would otherwise
  be all head, run in a pass compiled for its exact length and remembered for the process; a caller that knows the
  constant part (a chat question's template) gives it, so that part runs once and the rest in width buckets.

  `keep_cache=False` (namer only) keeps log q at the slot and no keys/values: all that one-token labels read. Rows are
  five times smaller, so the prefix memo holds five times as many words; two-token labels then cannot be scored."""
  if not keep_cache and disc.kind != "namer":
    raise ValueError(f"the {disc.kind} discriminator reads the prefix cache of every example: keep_cache must be True")
  if disc.also:  # an ensemble of namer prompts: each prepared as its own namer, log q averaged. No keys/values: one
    # prompt's would not match the averaged log q, so labels of several tokens cannot be scored (`require_cache`).
    runs = [prepare_splits(params, cfg, tokenizer, v, splits, n_slots, chunk, False) for v in variants(disc)]
    return [dataclasses.replace(ps[0], logq_BxV=sum(p.logq_BxV for p in ps) / len(ps)) for ps in zip(*runs)]
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
  if head is None:
    head = common_head([p for p, _, _ in every])
  elif any(len(p) <= head or p[:head] != every[0][0][:head] for p, _, _ in every):  # a caller's head is checked
    raise ValueError(f"the prompts do not share their first {head} tokens, or have none after them")
  memo, head_ids = MEMO.for_model(params), tuple(every[0][0][:head])
  shared = memo.head(params, cfg, head_ids)
  chunks, where = _own_prefixes(params, cfg, shared, [tuple(p[head:]) for p, _, _ in every], chunk, memo, head_ids,
                                 keep_cache)
  out = []
  for ps in plans:
    rows = [where[tuple(p[head:])] for p, _, _ in ps]
    if keep_cache:
      cache, logq_BxV = gather_rows(rows, chunks, max(len(p) - head for p, _, _ in ps))
    else:
      cache, logq_BxV = no_positions(shared, len(ps)), gather_logq(rows, chunks)
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


def variants(disc: DiscriminatorConfig) -> list[DiscriminatorConfig]:
  """An ensemble namer's members, one per template; any other discriminator alone."""
  return [dataclasses.replace(disc, template=t, also=()) for t in (disc.template, *disc.also)]


def warm_memo(params, cfg: ModelConfig, tokenizer, disc: DiscriminatorConfig,
              per_feature: Sequence[Sequence[ExampleText]], n_slots: int = 1, keep_cache: bool = True,
              chunk: int = 64, block: int = 2048, log=None) -> int:
  """Runs the distinct prompts of many features' examples once, before labeling them, into `MEMO` (up to its
  capacity, the prompts shared by the most features first): later `prepare_splits` calls find them there.

  One pass over every distinct prompt of a run, sorted by length in full chunks padded to their own longest row,
  instead of each feature's new prompts in part-filled chunks padded to width buckets. Returns how many ran."""
  memo = MEMO.for_model(params)
  if not memo.max_bytes or not per_feature:
    return 0
  if disc.also:  # each phrasing's prompts, log q only (as `prepare_splits` prepares an ensemble)
    return sum(warm_memo(params, cfg, tokenizer, v, per_feature, n_slots, False, chunk, block, log)
               for v in variants(disc))
  plans = [[token_plan(disc, tokenizer, ex, n_slots)[0] for ex in exs] for exs in per_feature]
  head = common_head([p for ps in plans for p in ps])
  counts = collections.Counter(u for ps in plans for u in {tuple(p[head:]) for p in ps})
  head_ids = tuple(plans[0][0][:head])
  todo = [u for u, _ in counts.most_common() if memo.get((head_ids, u)) is None]
  row_bytes = cfg.vocab_size * 4  # log q; with keys/values, 2 x layers x kv heads x head dim per own token besides
  if keep_cache and todo:
    row_bytes += 2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * 4 * np.mean([len(u) for u in todo])
  todo = todo[:max(0, int((memo.max_bytes - memo.nbytes) // row_bytes))]
  todo.sort(key=len)
  shared = memo.head(params, cfg, head_ids)
  for start in range(0, len(todo), block):
    _own_prefixes(params, cfg, shared, todo[start:start + block], chunk, memo, head_ids, keep_cache, exact=True)
    if log:
      log(f"prompt passes: {min(start + block, len(todo))}/{len(todo)} distinct prompts")
  return len(todo)


def last_logq(params, cfg: ModelConfig, prompts: Sequence[Sequence[int]]) -> jax.Array:
  """log q at the last token of each prompt (B x V), for prompts that start with the same few-shot lines: those
  run once per model (`MEMO.head`), each prompt only its own tokens, right-padded to a multiple of 8."""
  head = common_head(prompts)
  shared = MEMO.for_model(params).head(params, cfg, tuple(prompts[0][:head]))
  own = [p[head:] for p in prompts]
  lens = np.asarray([len(o) for o in own], np.int32)
  ids = _pad(own, 0, np.int32)
  ids = np.pad(ids, ((0, 0), (0, -ids.shape[1] % 8)))
  valid = np.arange(ids.shape[1])[None] < lens[:, None]
  return _prefix_logq(params, cfg, shared, jnp.asarray(ids), jnp.asarray(valid), jnp.asarray(lens))


def common_head(prefixes: Sequence[Sequence[int]]) -> int:
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


class PrefixMemo:
  """The own-prefix rows (keys/values and log q at the last token) of recently run prompts, kept across calls for
  the model they were computed with, up to `max_bytes`, least recently used first out.

  The namer's prompt depends only on the word ("dog is a kind of"), so the features of one run share most of their
  prompts (the random negatives, the frequent tokens of SAE latents): each is run once per process instead of once
  per feature. Rows are the exact arrays a fresh pass gives, so results do not depend on what was cached.
  """

  AUTO_ROWS = 5000  # prompts whose log q the default size holds (the 26 concept features run 1849 distinct ones)

  def __init__(self, max_bytes: int | None = None):
    self.max_bytes = max_bytes
    self._rows: collections.OrderedDict[Any, tuple[np.ndarray, np.ndarray, np.ndarray]] = collections.OrderedDict()
    self._heads: dict[tuple[ModelConfig, tuple[int, ...]], model_lib.KVCache] = {}
    self._bytes = 0
    self._params = None
    self.hits = self.misses = 0

  @property
  def max_bytes(self) -> int:
    """The size given, or by default (None) room for AUTO_ROWS rows of log q over the current model's vocabulary, at
    least 1 GiB (1 GiB for a 49k vocabulary, 2.8 GiB for Qwen2.5's 152k; a fixed 1 GiB made the 1.5B model evict and
    rerun prompts, 453 s against 316 s for the 26 concept features)."""
    if self._requested is not None:
      return self._requested
    vocab = 0 if self._params is None else self._params["embed_VxD"].shape[0]
    return max(1 << 30, self.AUTO_ROWS * vocab * 4)

  @max_bytes.setter
  def max_bytes(self, value: int | None) -> None:
    self._requested = None if value is None else int(value)

  def for_model(self, params) -> "PrefixMemo":
    if params is not self._params:
      self.clear()
      self._params = params
    return self

  def head(self, params, cfg: ModelConfig, ids: tuple[int, ...]) -> model_lib.KVCache:
    """The common head's keys/values (the few-shot lines every prompt of a formulation starts with): run once per
    head and model, not once per call (a 30-layer pass per feature otherwise). Not remembered when the memo is off."""
    cache = self._heads.get((cfg, ids)) if self.max_bytes else None
    if cache is None:
      cache = _head_pass(params, cfg, jnp.asarray([ids], jnp.int32))
      if self.max_bytes:
        self._heads[cfg, ids] = cache
    return cache

  def clear(self) -> None:
    self._heads = {}
    self._rows.clear()
    self._bytes = 0
    self._params = None

  @property
  def nbytes(self) -> int:
    return self._bytes

  def get(self, key):
    row = self._rows.get(key)
    if row is not None:
      self._rows.move_to_end(key)
    return row

  def put(self, key, row: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    size = sum(a.nbytes for a in row if a is not None)
    if size > self.max_bytes:
      return
    old = self._rows.pop(key, None)  # a row with keys/values replacing one without
    if old is not None:
      self._bytes -= sum(a.nbytes for a in old if a is not None)
    self._rows[key] = row
    self._bytes += size
    while self._bytes > self.max_bytes:
      _, old = self._rows.popitem(last=False)
      self._bytes -= sum(a.nbytes for a in old if a is not None)


MEMO = PrefixMemo()  # one per process; `MEMO.max_bytes = 0` turns it off


def _own_prefixes(params, cfg: ModelConfig, shared: model_lib.KVCache, own: Sequence[tuple[int, ...]], chunk: int,
                  memo: PrefixMemo | None = None, head: tuple[int, ...] = (), keep_cache: bool = True,
                  exact: bool = False
                  ) -> tuple[list[tuple[model_lib.KVCache | None, Any]], dict[tuple[int, ...], tuple[int, int]]]:
  """Own prefixes after the shared head, each distinct one run once: per chunk, the KV cache and log q at the last
  token; and where each prompt's row is (chunk, row), for `gather_rows`.

  Identical prompts (the namer's "dog is a kind of" for every "dog") run once, and not at all when `memo` holds them
  (after the same `head`) from an earlier call. The others run in chunks of up to `chunk` rows sorted by length, each
  chunk padded only to its own width bucket, so short prompts do not pay for the longest one (invalid positions are
  masked in attention). Without `keep_cache` a chunk's cache is None and only log q is computed and remembered; a
  remembered row without keys/values does not serve a call that keeps them. `exact`: chunks padded to their longest
  row only (a compilation per width: for `warm_memo`, whose chunks are long runs of equal lengths).
  """
  unique = list(dict.fromkeys(own))
  chunks, where = [], {}
  remembered = {u: memo.get((head, u)) for u in unique} if memo is not None else {}
  known = [u for u, row in remembered.items() if row is not None and (row[0] is not None or not keep_cache)]
  if known:
    chunks.append(_memo_chunk([remembered[u] for u in known], keep_cache))
    where.update({u: (0, r) for r, u in enumerate(known)})
  todo = [u for u in unique if u not in where]
  if memo is not None:
    memo.hits, memo.misses = memo.hits + len(known), memo.misses + len(todo)
  order = sorted(range(len(todo)), key=lambda i: len(todo[i]))
  rows = min(chunk, 1 << max(len(todo) - 1, 0).bit_length())  # few compiled row counts
  for start in range(0, len(order), rows):
    idx = order[start:start + rows]
    w = len(todo[idx[-1]]) if exact else _width_bucket(len(todo[idx[-1]]))
    ids = np.zeros((rows, w), np.int32)
    lens = np.ones(rows, np.int32)  # padding rows: one token, never read
    for r, i in enumerate(idx):
      ids[r, :len(todo[i])] = todo[i]
      lens[r] = len(todo[i])
      where[todo[i]] = (len(chunks), r)
    valid = np.arange(w)[None] < lens[:, None]
    args = (params, cfg, shared, jnp.asarray(ids), jnp.asarray(valid), jnp.asarray(lens))
    # Without keys/values the rows go to the host at once: `gather_logq` copies them from there.
    chunks.append(_prefix_pass(*args) if keep_cache else (None, np.asarray(_prefix_logq(*args))))
    if memo is not None and memo.max_bytes:
      cache, logq = chunks[-1]
      lq = np.asarray(logq)
      if keep_cache:
        k, v = np.asarray(cache.k_LxBxTxKxE), np.asarray(cache.v_LxBxTxKxE)
      for r, i in enumerate(idx):
        n = len(todo[i])
        memo.put((head, todo[i]), (k[:, r, :n].copy(), v[:, r, :n].copy(), lq[r].copy()) if keep_cache
                 else (None, None, lq[r].copy()))
  return chunks, where


def _memo_chunk(rows: Sequence[tuple[np.ndarray | None, np.ndarray | None, np.ndarray]], keep_cache: bool = True
                ) -> tuple[model_lib.KVCache | None, Any]:
  """Remembered rows as one chunk of the layout `_prefix_pass` returns (padding past each row's length invalid);
  without keys/values, the list of log q rows."""
  if not keep_cache:  # the rows as they are: `gather_logq` copies each example's once
    return None, [r[2] for r in rows]
  logq = np.stack([r[2] for r in rows])
  k0 = rows[0][0]
  w = _width_bucket(max(r[0].shape[1] for r in rows))
  k = np.zeros((k0.shape[0], len(rows), w) + k0.shape[2:], k0.dtype)
  v = np.zeros_like(k)
  valid = np.zeros((len(rows), w), bool)
  for i, (rk, rv, _) in enumerate(rows):
    n = rk.shape[1]
    k[:, i, :n], v[:, i, :n], valid[i, :n] = rk, rv, True
  return model_lib.KVCache(*jax.device_put((k, v, valid))), jax.device_put(logq)


@jax.jit(static_argnums=1)
def _head_pass(params, cfg, ids_1xH):
  _, cache, _ = model_lib.forward(params, cfg, model_lib.embed(params, ids_1xH), jnp.arange(ids_1xH.shape[1])[None])
  return cache


def _own_pass(params, cfg, shared, ids_BxP, valid_BxP, len_B):
  """Own prefixes after the shared head: their keys/values, and log q at their last token."""
  H, (B, P) = shared.length, ids_BxP.shape
  positions_BxP = jnp.broadcast_to(H + jnp.arange(P), (B, P))
  h_BxPxD, cache, _ = model_lib.forward(params, cfg, model_lib.embed(params, ids_BxP), positions_BxP, valid_BxP,
                                        shared)
  own = model_lib.KVCache(cache.k_LxBxTxKxE[:, :, H:], cache.v_LxBxTxKxE[:, :, H:], cache.valid_BxT[:, H:])
  last_BxD = jnp.take_along_axis(h_BxPxD, (len_B - 1)[:, None, None], axis=1)[:, 0]
  return own, jax.nn.log_softmax(model_lib.logits(params, last_BxD), axis=-1)


_prefix_pass = jax.jit(_own_pass, static_argnums=1)
# Without the keys/values: nothing of the pass but log q leaves the compiled call.
_prefix_logq = jax.jit(lambda *args: _own_pass(*args)[1], static_argnums=1)
