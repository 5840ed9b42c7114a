"""The formulations as configuration: prompt templates, the registry, and how an example becomes token ids.

Everything here is text and tokens (no model): what the prompt says, where the label slot is, and which output
positions and tokens are read out, so a template can change without touching the passes that run it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

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
  # Namer only: more templates, each run as its own namer, whose log q at the slot is averaged with the template's
  # (an ensemble of prompts: a member word rarely fits every phrasing). One-token labels, scored by the exact scan.
  also: tuple[str, ...] = ()

  @property
  def reads_context(self) -> bool:
    """Whether a prompt shows the text around the word. One that reads only the word scores every token of a word
    alike, which the chance check and the hints count on (`splits.Split.effective_counts`)."""
    return any("{context}" in t for t in (self.template, *self.also))


_JUDGE_TEXT = (
    "Here is a text with one token marked by [[ ]].\n\nText: {context}\nMarked token: {word}\n\n"
    "Is the marked token an example of the concept \"{label}\"? Answer with 1 for yes or 0 for no.")

# Few-shot lines. Their categories (music, rock, day) are kept out of experiments/concepts.json, so the examples
# cannot hand the answer to a concept the defaults are chosen on.
_LIST_SHOTS = "Examples of music: jazz, opera, blues, reggae.\nExamples of rock: granite, basalt, marble.\n"
_KIND_SHOTS = "jazz is a kind of music.\ngranite is a kind of rock.\nMonday is a kind of day.\n"
_OTHER_SHOTS = "jazz and other music.\ngranite and other rocks.\nMonday and other days.\n"
_KIND_OF = _KIND_SHOTS + "{word} is a kind of{label}"
_AND_OTHER = _OTHER_SHOTS + "{word} and other{label}"

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
    "namer": DiscriminatorConfig(name="namer", kind="namer", template=_KIND_OF),
    # Namer with a Hearst pattern ("saw and other tools"): the plural that follows names a class, rarely a sibling.
    "namer_other": DiscriminatorConfig(name="namer_other", kind="namer", template=_AND_OTHER),
    # Both phrasings at once: log q averaged over "is a kind of" and "and other".
    "namer_both": DiscriminatorConfig(name="namer_both", kind="namer", template=_KIND_OF, also=(_AND_OTHER,)),
    "namer_context": DiscriminatorConfig(
        name="namer_context", kind="namer",
        template=_KIND_SHOTS + "Text: {context}\nThe marked word, {word}, is a kind of{label}"),
}


def get(name: str) -> DiscriminatorConfig:
  if name not in PRESETS:
    raise UserError(f"unknown discriminator {name!r}", f"use one of {', '.join(PRESETS)}")
  return PRESETS[name]


def default_for(tokenizer, cfg: ModelConfig) -> str:  # pylint: disable=unused-argument
  """The namer, for every model (measured; docs/discriminators.md): on the 135M model the judge is at chance; on
  Qwen2.5-Coder-1.5B it separates a category's name from its members, but its gradient run costs a forward and
  backward pass of the whole model per example and step (hours per feature on a 2-core CPU), where the namer's exact
  scan costs one short pass per distinct word. --discriminator=judge runs the paper's formulation on an accelerator."""
  return "namer"


@dataclasses.dataclass(frozen=True)
class ExampleText:
  word: str  # the highlighted token as a reader sees it
  context: str  # the window around it with the token marked



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
