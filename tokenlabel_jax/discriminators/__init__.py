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

One module per job, in dependency order: `templates` (the formulations and their token plans), `rows` (the cached
rows and the operations that move them), `scoring` (labels scored on cached rows), `prefix` (running and caching the
prefixes). Callers use this package's names (`disc_lib.prepare`, `disc_lib.scores`, ...).
"""

from tokenlabel_jax.discriminators.prefix import (MEMO, PrefixMemo, _width_bucket, prepare, prepare_splits, variants,
                                                 warm_memo)
from tokenlabel_jax.discriminators.rows import Prepared, empty_cache, gather_rows, pad_cache, stack, take_rows
from tokenlabel_jax.discriminators.scoring import hard_scores, namer_scores, next_token_logp, require_cache, scores
from tokenlabel_jax.discriminators.templates import (LABEL, PRESETS, DiscriminatorConfig, ExampleText, default_for,
                                                     encode_label, get, token_plan, word_like_mask)
from tokenlabel_jax.errors import UserError

