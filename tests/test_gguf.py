"""GGUF files written here with the `gguf` package: each supported pre-tokenizer against transformers' tokenizer built
from the same file, Llama-3.1's rope_freqs against the same weights read from a Hugging Face directory with
rope_scaling, and clear errors for what is not supported."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from tokenlabel_jax import model as M
from tokenlabel_jax import tokenizer as tokenizer_lib
from tokenlabel_jax.config import ModelConfig, RopeScaling
from tokenlabel_jax.errors import UserError
from tokenlabel_jax.loading import gguf_file, load_model

# Words whose merges the test vocabulary holds (byte-level spelling, 'Ġ' = space): digit groups of every length, a
# word after an opening parenthesis, contractions, so the pre-tokenizers' differences decide the tokens.
WORDS = ["Ġthe", "Ġdog", "Ġ2024", "2024", "202", "123", "Ġ123", "12", "'s", "'t", "Ġcats", "Hello", "Ġworld",
         "(the", "Ġ(", "ĠYear", "Ġ1000", "000", "ĠHello"]
STRINGS = [
    "Hello world", " leading space", "   three leading spaces", "trailing spaces   ", "12345 and 3.14159",
    "Year 2024: 1,000,000 users", "In 2024, the dog's 12345 cats", "(the Year 2024)", "naïve café résumé",
    "Ünïcödé — dashes … and “quotes”", "你好，世界！", "emoji 🙂🚀 mixed",
    "tabs\tand\nnewlines\n\n\n  x",
    "don't won't it's THE DOG'S", "def f(x):\n    return x ** 2", "https://example.com/a?b=c&d=e", "a", "1234567",
    "Привет, мир", "<|begin_of_text|>Hello<|end_of_text|>",
]


def _byte_alphabet() -> list[str]:
  from transformers.convert_slow_tokenizer import bytes_to_unicode
  b2u = bytes_to_unicode()
  return [b2u[b] for b in range(256)]


def _vocab(words, controls=True):
  """Two control tokens, the 256 byte symbols, then each word built left to right by merges."""
  tokens, merges = (["<|begin_of_text|>", "<|end_of_text|>"] if controls else []) + _byte_alphabet(), []
  for w in words:
    for k in range(2, len(w) + 1):
      if w[:k] not in tokens:
        merges.append(f"{w[:k - 1]} {w[k - 1]}")
        tokens.append(w[:k])
  return tokens, merges


def write_gguf(path, *, pre="llama-bpe", tokenizer_model="gpt2", words=WORDS, cfg=None, tensors=None,
               rope_freqs=None, controls=True, arch="llama", quantized=None):
  """A GGUF file: `arch` metadata of `cfg`, a byte-level BPE tokenizer, and the given tensors (name -> [out, in]
  float32, or for names in `quantized`, name -> (raw blocks as uint8 [out, bytes per row], GGMLQuantizationType))."""
  import gguf
  tokens, merges = _vocab(words, controls)
  cfg = cfg or ModelConfig(vocab_size=len(tokens), dim=8, n_layers=1, n_heads=2, n_kv_heads=2, hidden_dim=16)
  w = gguf.GGUFWriter(str(path), arch)
  w.add_block_count(cfg.n_layers)
  w.add_context_length(cfg.max_seq_len)
  w.add_embedding_length(cfg.dim)
  w.add_feed_forward_length(cfg.hidden_dim)
  w.add_head_count(cfg.n_heads)
  w.add_head_count_kv(cfg.n_kv_heads)
  w.add_rope_dimension_count(cfg.head_dim)
  w.add_rope_freq_base(cfg.rope_theta)
  w.add_layer_norm_rms_eps(cfg.norm_eps)
  w.add_vocab_size(cfg.vocab_size)
  w.add_tokenizer_model(tokenizer_model)
  w.add_tokenizer_pre(pre)
  w.add_token_list(tokens)
  w.add_token_merges(merges)
  n_controls = 2 if controls else 0
  w.add_token_types([3] * n_controls + [1] * (len(tokens) - n_controls))
  if controls:
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
  for name, x in (tensors or {"token_embd.weight": np.zeros((len(tokens), 8), np.float32)}).items():
    w.add_tensor(name, np.ascontiguousarray(x, np.float32))
  for name, (raw, qtype) in (quantized or {}).items():
    w.add_tensor(name, np.ascontiguousarray(raw), raw_dtype=qtype)
  if rope_freqs is not None:
    w.add_tensor("rope_freqs.weight", np.asarray(rope_freqs, np.float32))
  w.write_header_to_file()
  w.write_kv_data_to_file()
  w.write_tensors_to_file()
  w.close()
  return str(path)


def _ours(path):
  import gguf
  return tokenizer_lib.from_gguf_spec(gguf_file.read_tokenizer_spec(gguf.GGUFReader(path)))


def _transformers(path):
  from transformers import AutoTokenizer
  folder, name = os.path.split(path)
  return AutoTokenizer.from_pretrained(folder, gguf_file=name)


@pytest.mark.parametrize("pre", ["llama-bpe", "llama3", "llama-v3", "gpt2", "qwen2"])
def test_gguf_pre_tokenizer_matches_transformers(tmp_path, pre):
  path = write_gguf(tmp_path / f"{pre}.gguf", pre=pre)
  ours, ref = _ours(path), _transformers(path)
  for s in STRINGS:
    assert ours.encode(s) == ref.encode(s, add_special_tokens=False), s
    assert ours.decode(ours.encode(s)) == s, s


def test_llama3_groups_digits_in_threes(tmp_path):
  """The issue's example: '2024' is 202|4 for Llama-3 (it was 2|0|2|4 with the digit-by-digit splitter), and a word
  after '(' stays one piece; GPT-2's pattern keeps ' 2024' whole and splits '(' off; Qwen2's splits every digit."""
  llama = _ours(write_gguf(tmp_path / "l.gguf", pre="llama-bpe"))
  gpt2 = _ours(write_gguf(tmp_path / "g.gguf", pre="gpt2"))
  qwen2 = _ours(write_gguf(tmp_path / "q.gguf", pre="qwen2"))
  pieces = lambda tok, s: [tok.token_str(i) for i in tok.encode(s)]
  assert pieces(llama, "2024") == ["202", "4"]
  assert pieces(qwen2, "2024") == ["2", "0", "2", "4"] and pieces(qwen2, "(the") == ["(the"]
  assert pieces(llama, "(the") == ["(the"]
  assert pieces(gpt2, " 2024") == [" 2024"]
  assert pieces(gpt2, "(the") == ["(", "t", "h", "e"]


def test_smollm_splits_every_digit_and_matches_transformers_on_its_kind_of_vocabulary(tmp_path):
  """SmolLM2's tokenizer.json splits digits one by one; its vocabulary has no digit merges, so transformers' GGUF
  conversion (GPT-2's pattern) gives the same tokens: compared on such a vocabulary."""
  words = [w for w in WORDS if not any(c.isdigit() for c in w)]
  path = write_gguf(tmp_path / "smollm.gguf", pre="smollm", words=words)
  ours, ref = _ours(path), _transformers(path)
  for s in STRINGS:
    assert ours.encode(s) == ref.encode(s, add_special_tokens=False), s
  with_digits = _ours(write_gguf(tmp_path / "smollm_digits.gguf", pre="smollm"))
  assert [with_digits.token_str(i) for i in with_digits.encode("2024")] == ["2", "0", "2", "4"]


@pytest.mark.parametrize("pre, tokenizer_model", [("tekken", "gpt2"), ("default", "gpt2"), ("llama-bpe", "llama")])
def test_unsupported_gguf_tokenizer_is_a_clear_error(tmp_path, tmp_cache, pre, tokenizer_model):
  path = write_gguf(tmp_path / "x.gguf", pre=pre, tokenizer_model=tokenizer_model)
  with pytest.raises(UserError) as e:
    load_model(path, verbose=False)
  assert repr(pre if tokenizer_model == "gpt2" else tokenizer_model) in str(e.value)
  assert "Hugging Face directory" in e.value.fix


def test_a_corrupt_gguf_file_says_how_to_get_it_again(tmp_path, tmp_cache):
  """A file of the user's is to be downloaded again; one in the cache is deleted and fetched again."""
  for place, fix in ((tmp_path / "mine.gguf", "download or convert it again"),
                     (tmp_path / "cache" / "model.gguf", "fetches the packaged model again")):
    place.parent.mkdir(exist_ok=True)
    place.write_bytes(open(write_gguf(tmp_path / "x.gguf"), "rb").read()[:200])  # the header survives, the rest is cut
    with pytest.raises(UserError) as e:
      load_model(str(place), verbose=False)
    assert "not a readable GGUF file" in e.value.what and fix in e.value.fix


def test_supported_list_agrees_with_the_loader():
  """TinyLlama and Llama-2 GGUFs carry SentencePiece tokenizers, which the loader refuses: not listed as GGUF-ready."""
  listed = gguf_file.SUPPORTED.split("for SentencePiece")[0]
  assert "TinyLlama" not in listed and "Llama-2" not in listed
  for pre in tokenizer_lib.GGUF_PRE_TOKENIZERS:
    assert pre in listed


# --- rope_freqs ----------------------------------------------------------------------------------------------------

# Llama-3.1-style scaling that matters within 200 positions: most rotary pairs have wavelengths beyond 16 tokens.
ROPE_CFG = ModelConfig.tiny(rope_theta=10000.0, max_seq_len=256,
                            rope_scaling=RopeScaling(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                                     original_max_position=16))


def llama_cpp_rope_freqs(cfg: ModelConfig) -> np.ndarray:
  """What llama.cpp's converter writes for a Llama-3.1 model: per rotary pair, the divisor of its frequency."""
  rs, E = cfg.rope_scaling, cfg.head_dim
  freqs = 1.0 / cfg.rope_theta ** (np.arange(0, E, 2, dtype=np.float64) / E)
  out = []
  for f in freqs:
    wavelen = 2 * np.pi / f
    if wavelen < rs.original_max_position / rs.high_freq_factor:
      out.append(1.0)
    elif wavelen > rs.original_max_position / rs.low_freq_factor:
      out.append(rs.factor)
    else:
      smooth = (rs.original_max_position / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor)
      out.append(1 / ((1 - smooth) / rs.factor + smooth))
  return np.asarray(out, np.float32)


def _gguf_tensors(torch_model, cfg):
  sd = {k: v.float().numpy() for k, v in torch_model.state_dict().items()}
  out = {"token_embd.weight": sd["model.embed_tokens.weight"], "output_norm.weight": sd["model.norm.weight"],
         "output.weight": sd["lm_head.weight"]}
  names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
           "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
           "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
  for i in range(cfg.n_layers):
    for hf, gg in names.items():
      w = sd[f"model.layers.{i}.{hf}.weight"]
      if gg == "attn_q":
        w = helpers.llama_cpp_permute(w, cfg.n_heads)
      elif gg == "attn_k":
        w = helpers.llama_cpp_permute(w, cfg.n_kv_heads)
      out[f"blk.{i}.{gg}.weight"] = w
  return out


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("TOKENLABEL_CACHE", str(tmp_path / "cache"))


def test_rope_freqs_match_the_hf_directory_with_rope_scaling(tmp_path, tmp_cache):
  """The same random weights as a HF directory with rope_scaling and as a GGUF with rope_freqs give the same logits
  over 200 positions; without the factors they do not (the check can fail)."""
  hf_path = str(tmp_path / "hf")
  torch_model = helpers.write_hf_llama(hf_path, ROPE_CFG, seed=3)
  path = write_gguf(tmp_path / "llama31.gguf", pre="llama-bpe", words=[], controls=False, cfg=ROPE_CFG,
                    tensors=_gguf_tensors(torch_model, ROPE_CFG), rope_freqs=llama_cpp_rope_freqs(ROPE_CFG))
  from_hf = load_model(hf_path, verbose=False)
  from_gguf = load_model(path, verbose=False)
  assert from_gguf.cfg.rope_freq_factors is not None and from_gguf.cfg.rope_scaling is None
  ids = jnp.asarray(np.random.default_rng(0).integers(0, ROPE_CFG.vocab_size, (2, 200)))
  fwd = jax.jit(M.forward_tokens, static_argnames="cfg")
  ref = np.asarray(fwd(from_hf.params, from_hf.cfg, ids)[0])
  ours = np.asarray(fwd(from_gguf.params, from_gguf.cfg, ids)[0])
  np.testing.assert_allclose(ours, ref, atol=2e-4)
  ignored = np.asarray(fwd(from_gguf.params, ModelConfig(**{**from_gguf.cfg.__dict__, "rope_freq_factors": None}),
                           ids)[0])
  assert np.abs(ignored - ref).max() > 1e-2
  # and the HF path itself agrees with transformers on these weights
  np.testing.assert_allclose(ref, helpers.torch_logits(torch_model, np.asarray(ids)), atol=2e-4)
