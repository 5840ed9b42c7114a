"""The LLM explainer: an instruct model reads a feature's top-activating contexts and writes a short label.

What interpretability researchers use today (delphi, OpenAI's neuron-explainer), on the same model as the
discriminator, so the two methods can be compared and combined. The prompt shows contexts from the feature's
training records only, the activating tokens marked <<like this>>: the strongest records first, then some from
lower activation quantiles (so the label describes the feature, not only its peak). The model answers with one to
three words; the answer is parsed into a label or a status that says why there is none. Scoring the label on
held-out examples is the caller's (explain.py), with the same scorers as every other label.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Sequence

import numpy as np

from tokenlabel_jax import data as data_lib
from tokenlabel_jax import generation
from tokenlabel_jax.errors import UserError, check_settings, check_types

# No example labels in the instruction: small models copy them (Qwen2.5-Coder-1.5B answered "animal", an example
# of an earlier wording, for a feature of numbers).
INSTRUCTION = (
    "You are studying one feature of a language model. Below are text excerpts; in each, the tokens where the "
    "feature is active are marked with << >>. Work out what the marked tokens have in common and name it with a "
    "short label of one to three words. Answer with the label only.")
MAX_WORDS = 4  # one to three asked; a fourth word is tolerated, more is "too long"


@dataclasses.dataclass(frozen=True)
class ExplainConfig:
  n_top: int = 20  # the strongest training records (by their peak activation)
  n_quantile: int = 10  # more records drawn from lower quantiles of the peak activation
  before: int = 16  # tokens shown before a record's peak token
  after: int = 6  # and after it
  max_new: int = 16  # tokens generated at most
  samples: int = 1  # answers per feature: the first greedy, the rest sampled at `temperature`
  temperature: float = 0.8
  seed: int = 0

  def __post_init__(self):
    """Refuses a setting that shows the explainer nothing or cannot generate, naming the field."""
    check_types(self)
    checks = [("n_top", self.n_top >= 0, "at least 0"),
              ("n_quantile", self.n_quantile >= 0, "at least 0"), ("before", self.before >= 0, "at least 0"),
              ("after", self.after >= 0, "at least 0"), ("max_new", self.max_new >= 1, "at least 1"),
              ("samples", self.samples >= 1, "at least 1"),
              ("temperature", math.isfinite(self.temperature) and self.temperature >= 0, "a number of at least 0")]
    check_settings(self, checks, {n: None for n in ("before", "after", "max_new", "temperature")})
    if self.n_top + self.n_quantile < 1:
      raise UserError("n_top=0 and n_quantile=0 show the explainer no record", "give n_top or n_quantile at least 1")


def contexts(feature: data_lib.Feature, threshold: float, ecfg: ExplainConfig) -> list[str]:
  """The excerpts shown to the explainer: windows around the peak token of the top training records and of records
  from lower quantiles, every token above `threshold` in a window marked <<token>>."""
  feature = data_lib.assign_splits(feature, threshold=threshold)  # records without a split: as labeling splits them
  train = [r for r in feature.records if r.split == "train" and r.activations.size and r.activations.max() > threshold]
  train.sort(key=lambda r: -float(r.activations.max()))
  chosen = train[:ecfg.n_top]
  rest = train[ecfg.n_top:]
  if rest and ecfg.n_quantile:  # evenly over the ranks below the top: each lower quantile contributes
    rng = np.random.default_rng(ecfg.seed)
    bins = np.array_split(np.arange(len(rest)), min(ecfg.n_quantile, len(rest)))
    chosen += [rest[int(rng.choice(b))] for b in bins if len(b)]
  out = []
  for r in chosen:
    peak = int(np.argmax(r.activations))
    lo, hi = max(0, peak - ecfg.before), min(len(r.tokens), peak + 1 + ecfg.after)
    pieces = []
    for t, a in zip(r.tokens[lo:hi], r.activations[lo:hi]):
      t = t.replace("Ġ", " ").replace("▁", " ")
      core = t.strip()
      pieces.append(t[:len(t) - len(t.lstrip())] + f"<<{core}>>" + t[len(t.rstrip()):] if a > threshold and core
                    else t)
    out.append(re.sub(r"\s+", " ", "".join(pieces)).strip())
  return out


def prompt_ids(tokenizer, excerpts: Sequence[str]) -> list[int]:
  body = INSTRUCTION + "\n\n" + "\n".join(f"{i + 1}. {e}" for i, e in enumerate(excerpts))
  if tokenizer.has_chat_template:
    return tokenizer.encode(tokenizer.chat([{"role": "user", "content": body}]))
  return tokenizer.encode(body + "\n\nLabel:")


def parse(text: str) -> tuple[str | None, str]:
  """(label, status): "ok", or why there is no label: "empty", "too long", "not text"."""
  line = text.strip().splitlines()[0].strip() if text.strip() else ""
  line = re.sub(r"^(the\s+)?(label|answer|feature)\s*(is)?\s*[:\-]\s*", "", line, flags=re.I).strip()
  line = line.strip(" \t\"'`*.:;,!<>«»“”‘’()[]").strip()
  if not line:
    return None, "empty"
  if not any(ch.isalpha() for ch in line):
    return None, "not text"
  if len(line.split()) > MAX_WORDS:
    return None, "too long"
  return line.lower() if line.isupper() or line[:1].isupper() and line[1:].islower() else line, "ok"


# Answers already decoded in this process, by (prompt, temperatures, seed, length): deterministic, so the comparison
# experiment's explainer run and its combination run (label --propose_with=explainer) decode each prompt once.
_ANSWERS: dict[tuple, list[str]] = {}


def _key(m, prompt, temps, ecfg: ExplainConfig) -> tuple:
  return m.cfg, id(m.params), tuple(prompt), tuple(temps), ecfg.seed, ecfg.max_new


def remember(m, feature: data_lib.Feature, threshold: float, ecfg: ExplainConfig, texts: Sequence[str]) -> None:
  """Takes the raw answers a finished run stored for this feature as this process's own, so a resumed study's
  combination (`label --propose_with=explainer`) reads them instead of decoding the prompt again."""
  temps = _temperatures(ecfg)
  if len(texts) == len(temps):
    shown = contexts(feature, threshold, ecfg)
    if shown:
      _ANSWERS[_key(m, prompt_ids(m.tokenizer, shown), temps, ecfg)] = list(texts)


def _temperatures(ecfg: ExplainConfig) -> list[float]:
  return [0.0] + [ecfg.temperature] * (max(1, ecfg.samples) - 1)  # the first greedy; one shared prefill per prompt


def explain(m, features: Sequence[data_lib.Feature], threshold: float, ecfg: ExplainConfig = ExplainConfig(),
            batch: int = 4) -> list[dict]:
  """Per feature: the excerpts, every answer (raw text, parsed label, status) and the first usable label."""
  stop = [t for t in (m.tokenizer.hf.convert_tokens_to_ids(s) for s in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>"))
          if isinstance(t, int) and t >= 0 and t != getattr(m.tokenizer.hf, "unk_token_id", None)]
  stop += [t for t in m.tokenizer.encode("\n")[:1]]
  shown = [contexts(f, threshold, ecfg) for f in features]
  prompts = [prompt_ids(m.tokenizer, ex) for ex in shown]
  temps = _temperatures(ecfg)
  live = [i for i, ex in enumerate(shown) if ex]
  todo = [i for i in live if _key(m, prompts[i], temps, ecfg) not in _ANSWERS]
  new = generation.generate(m.params, m.cfg, [prompts[i] for i in todo], ecfg.max_new, stop, temps, ecfg.seed,
                            batch) if todo else []
  for j, i in enumerate(todo):
    _ANSWERS[_key(m, prompts[i], temps, ecfg)] = [m.tokenizer.decode([t for t in ids if t not in stop])
                                               for ids in new[j * len(temps):(j + 1) * len(temps)]]
  answers = [_ANSWERS.get(_key(m, p, temps, ecfg), []) for p in prompts]
  out = []
  for f, ex, texts, ids in zip(features, shown, answers, prompts):
    parsed = [parse(t) for t in texts]
    ok = [label for label, status in parsed if status == "ok"]
    status = "ok" if ok else ("no activating training record" if not ex else parsed[0][1])
    out.append({"feature": f.name, "label": ok[0] if ok else None, "status": status,
                "proposals": list(dict.fromkeys(ok)), "answers": [{"text": t, "label": l, "status": st}
                                                                 for t, (l, st) in zip(texts, parsed)],
                "excerpts": ex, "prompt_tokens": len(ids)})
  return out
