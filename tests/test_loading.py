"""Loading: a tiny Hugging Face directory against transformers, the converted-model cache, the real embedded GGUF
against transformers' own GGUF loader, and one clear UserError for each kind of bad input."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from tokenlabel_jax import model as M
from tokenlabel_jax import tokenizer as tokenizer_lib
from tokenlabel_jax.config import ModelConfig
from tokenlabel_jax.errors import UserError, exit_on_user_error
from tokenlabel_jax.loading import gguf_file, load_model

# Llama-3 shaped: GQA, llama3 rope scaling, theta 500000, untied, head_dim (32) != dim / n_heads (16).
CFG = ModelConfig.tiny(head_dim=32)
TOKENS = np.random.default_rng(0).integers(0, CFG.vocab_size, (3, 40))
logits_fn = jax.jit(M.forward_tokens, static_argnames="cfg")

CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "List three prime numbers: 2, 3,"}],
    [{"role": "user", "content": "Translate 'good morning' into German and Chinese (早上好)."},
     {"role": "assistant", "content": "Guten Morgen."}, {"role": "user", "content": "And in French?"}],
]
STRINGS = [
    "Hello world", " leading space", "   three leading spaces", "trailing spaces   ", "12345 and 3.14159",
    "Year 2024: 1,000,000 users", "naïve café résumé", "Ünïcödé — dashes … and “quotes”",
    "你好，世界！今天天气很好。",
    "日本語のテキスト", "emoji 🙂🚀 mixed", "tabs\tand\nnewlines\n\n", "<|im_start|>user\nhi<|im_end|>\n",
    "<|im_start|>assistant\n", "don't won't it's", "def f(x):\n    return x ** 2", "https://example.com/a?b=c&d=e",
    "ALL CAPS AND lower", "a", "Привет, мир",
]


def _max_diff(a, b) -> float:
  return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


@pytest.fixture(scope="module")
def hf_llama(tmp_path_factory):
  """(directory, torch model) of a tiny random LlamaForCausalLM saved in several safetensors shards."""
  path = str(tmp_path_factory.mktemp("hf") / "tiny-llama")
  return path, helpers.write_hf_llama(path, CFG, seed=0, max_shard_size="200KB")


@pytest.fixture(scope="module")
def torch_ref(hf_llama):
  return helpers.torch_logits(hf_llama[1], TOKENS)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
  cache = tmp_path / "cache"
  monkeypatch.setenv("TOKENLABEL_CACHE", str(cache))
  return cache


def _jax_logits(lm, tokens=TOKENS) -> np.ndarray:
  return np.asarray(logits_fn(lm.params, lm.cfg, jnp.asarray(tokens))[0])


# --- a tiny Hugging Face directory ---------------------------------------------------------------------------------


def test_hf_dir_matches_transformers(hf_llama, torch_ref, tmp_cache):
  path, torch_model = hf_llama
  assert len(glob.glob(os.path.join(path, "*.safetensors"))) >= 3  # really sharded
  with open(os.path.join(path, "config.json")) as f:
    saved = json.load(f)
  rope = saved.get("rope_parameters") or saved.get("rope_scaling")
  assert rope["rope_type"] == "llama3" and rope["factor"] == 8.0
  # transformers applies llama3 scaling: its inverse frequencies are ours, not the plain ones.
  torch_freq = torch_model.model.rotary_emb.inv_freq.numpy()
  np.testing.assert_allclose(torch_freq, M.rope_frequencies(CFG), rtol=1e-5)
  assert not np.allclose(torch_freq, M.rope_frequencies(dataclasses.replace(CFG, rope_scaling=None)), rtol=1e-3)

  lm = load_model(path, use_cache=False, verbose=False)
  assert dataclasses.replace(lm.cfg, name=CFG.name) == CFG
  assert "lm_head_DxV" in lm.params and lm.params["layers"]["wk_LxDxKE"].shape == (2, 64, 2 * 32)
  ours = _jax_logits(lm)
  diff = _max_diff(ours, torch_ref)
  print(f"tiny HF model: max |logit diff| vs transformers = {diff:.2e} (logits up to {np.abs(torch_ref).max():.1f})")
  assert diff < 1e-4
  # The comparison is sensitive to the rope scaling: without it the logits move well past the tolerance.
  unscaled = _jax_logits(lm._replace(cfg=dataclasses.replace(lm.cfg, rope_scaling=None)))
  assert _max_diff(unscaled, torch_ref) > 1e-2
  assert lm.tokenizer.encode("the big dog sat on the mat") == [3 + helpers.WORDS.index(w) for w in
                                                                 "the big dog sat on the mat".split()]


def _leaves(params):
  return jax.tree_util.tree_flatten_with_path(params)[0]


def _assert_same_params(a, b):
  la, lb = _leaves(a), _leaves(b)
  assert [p for p, _ in la] == [p for p, _ in lb]
  for (p, x), (_, y) in zip(la, lb):
    assert x.dtype == y.dtype and x.shape == y.shape, p
    np.testing.assert_array_equal(np.asarray(x, np.float32), np.asarray(y, np.float32), err_msg=str(p))


@pytest.mark.parametrize("damage", ["params", "model.json"])
def test_cache_reload_and_rebuild(hf_llama, tmp_cache, capsys, damage):
  path = hf_llama[0]
  first = load_model(path)
  assert "converted" in capsys.readouterr().err
  (out_dir,) = glob.glob(str(tmp_cache / "converted" / "*"))
  second = load_model(path)
  assert "from cache" in capsys.readouterr().err
  assert second.cfg == first.cfg
  _assert_same_params(second.params, first.params)
  assert second.tokenizer.encode("a red cat and a blue dog") == first.tokenizer.encode("a red cat and a blue dog")
  # Damage the cache: the next load warns, rebuilds, and gives the same model.
  if damage == "params":
    files = [f for f in glob.glob(os.path.join(out_dir, "params", "**"), recursive=True) if os.path.isfile(f)]
    assert files
    for f in files:
      with open(f, "wb") as fh:
        fh.write(b"\x00garbage" * 3)
  else:
    with open(os.path.join(out_dir, "model.json"), "w") as fh:
      fh.write('{"config": {"dim": ')
  third = load_model(path)
  err = capsys.readouterr().err
  assert "rebuilding" in err and "converted" in err
  _assert_same_params(third.params, first.params)
  assert third.cfg == first.cfg
  load_model(path)
  assert "from cache" in capsys.readouterr().err


def test_bfloat16_load(hf_llama, torch_ref, tmp_cache, capsys):
  path = hf_llama[0]
  lm16 = load_model(path, dtype="bfloat16")
  again = load_model(path, dtype="bfloat16")  # through the cache (its key includes the dtype)
  assert "from cache" in capsys.readouterr().err
  for lm in (lm16, again):
    assert {x.dtype for x in jax.tree.leaves(lm.params)} == {jnp.dtype(jnp.bfloat16)}
  _assert_same_params(again.params, lm16.params)
  ours = _jax_logits(lm16)
  assert ours.dtype == np.float32
  rel = _max_diff(ours, torch_ref) / np.abs(torch_ref).max()
  print(f"tiny HF model in bfloat16: max |logit diff| / max |logit| = {rel:.3f}")
  assert 0 < rel < 0.1


def test_unpermute_inverts_llama_cpp_permutation():
  rng = np.random.default_rng(1)
  for n_heads, head_dim in [(4, 8), (3, 64), (1, 2)]:
    w = rng.standard_normal((n_heads * head_dim, 5)).astype(np.float32)
    permuted = helpers.llama_cpp_permute(w, n_heads)
    if head_dim > 2:
      assert not np.array_equal(permuted, w)
    np.testing.assert_array_equal(gguf_file.unpermute_qk(permuted, n_heads), w)


# --- the real embedded model ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_ref(embedded_model, torch_gguf):
  """The three chat prompts right-padded into one batch (tokens, valid) and transformers' logits for each."""
  tok = embedded_model.tokenizer
  ids = [tok.encode(tok.chat(c)) for c in CHATS]
  n = max(map(len, ids))
  tokens = np.array([x + [0] * (n - len(x)) for x in ids])
  valid = np.arange(n)[None] < np.array([len(x) for x in ids])[:, None]
  return tokens, valid, [helpers.torch_logits(torch_gguf[0], [x])[0] for x in ids]


def _embedded_diff(params, cfg, chat_ref) -> float:
  tokens, valid, refs = chat_ref
  ours = np.asarray(logits_fn(params, cfg, jnp.asarray(tokens), valid_BxS=jnp.asarray(valid))[0])
  return max(_max_diff(ours[b, :len(ref)], ref) for b, ref in enumerate(refs))


@pytest.mark.model
def test_embedded_matches_transformers_gguf(embedded_model, chat_ref):
  cfg = embedded_model.cfg
  preset = ModelConfig.smollm2_135m()
  for field in ("vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads", "hidden_dim", "head_dim", "rope_theta",
                "rope_scaling", "tie_embeddings"):
    assert getattr(cfg, field) == getattr(preset, field), field
  diff = _embedded_diff(embedded_model.params, cfg, chat_ref)
  print(f"embedded SmolLM2: max |logit diff| vs transformers' GGUF loader = {diff:.2e}")
  assert diff < 1e-3


@pytest.mark.model
def test_wrong_qk_permutation_is_detected(embedded_model, chat_ref):
  """q/k as llama.cpp stores them (our un-permutation skipped) must fail the same comparison: the test can fail."""
  cfg, layers = embedded_model.cfg, embedded_model.params["layers"]

  def as_stored(w_LxDxO, n_heads):  # our [in, out] weights -> the file's row order, kept as [in, out]
    return jnp.stack([helpers.llama_cpp_permute(np.asarray(w).T, n_heads).T for w in w_LxDxO])

  wrong = dict(layers, wq_LxDxHE=as_stored(layers["wq_LxDxHE"], cfg.n_heads),
               wk_LxDxKE=as_stored(layers["wk_LxDxKE"], cfg.n_kv_heads))
  diff = _embedded_diff(dict(embedded_model.params, layers=wrong), cfg, chat_ref)
  print(f"embedded SmolLM2 without q/k un-permutation: max |logit diff| = {diff:.2f}")
  assert diff > 1.0


@pytest.mark.model
def test_gguf_tokenizer_matches_transformers(embedded_model, torch_gguf, gguf_path):
  import gguf
  fresh = tokenizer_lib.from_gguf_spec(gguf_file.read_tokenizer_spec(gguf.GGUFReader(gguf_path)))
  ref = torch_gguf[1]
  for name, tok in [("from GGUF", fresh), ("from cache", embedded_model.tokenizer)]:
    for s in STRINGS:
      assert tok.encode(s) == ref.encode(s, add_special_tokens=False), (name, s)
      assert tok.decode(tok.encode(s)) == s, (name, s)
    for c in CHATS:
      assert tok.chat(c) == ref.apply_chat_template(c, tokenize=False, add_generation_prompt=True), name
  assert len(fresh.encode("<|im_start|>")) == 1
  assert fresh.vocab_size == embedded_model.cfg.vocab_size


# --- bad input -----------------------------------------------------------------------------------------------------


def _write_gguf(path: str, arch: str):
  import gguf
  w = gguf.GGUFWriter(path, arch)
  w.add_block_count(1)
  w.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
  w.write_header_to_file()
  w.write_kv_data_to_file()
  w.write_tensors_to_file()
  w.close()


def _bad_path(kind: str, tmp_path, hf_llama) -> tuple[str, str]:
  """Builds one kind of bad model input; returns (argument to load_model, text the error must contain)."""
  if kind == "missing dir":
    p = str(tmp_path / "no-such-model")
    return p, p
  if kind == "missing gguf":
    p = str(tmp_path / "no-such-model.gguf")
    return p, p
  if kind == "no config.json":
    p = tmp_path / "empty-model"
    p.mkdir()
    (p / "model.safetensors").write_bytes(b"")
    return str(p), "config.json"
  if kind == "gemma config.json":
    p = tmp_path / "gemma"
    p.mkdir()
    hf = dict(CFG.to_hf(), model_type="gemma", architectures=["GemmaForCausalLM"])
    (p / "config.json").write_text(json.dumps(hf))
    return str(p), str(p / "config.json")
  if kind == "random bytes gguf":
    p = tmp_path / "random.gguf"
    p.write_bytes(np.random.default_rng(0).bytes(1 << 16))
    return str(p), str(p)
  if kind == "gemma gguf":
    p = str(tmp_path / "gemma.gguf")
    _write_gguf(p, "gemma")
    return p, p
  if kind == "missing shard":
    p = str(tmp_path / "sharded")
    shutil.copytree(hf_llama[0], p)
    shard = sorted(glob.glob(os.path.join(p, "*.safetensors")))[1]
    os.remove(shard)
    return p, os.path.basename(shard)
  raise ValueError(kind)


@pytest.mark.parametrize("kind", ["missing dir", "missing gguf", "no config.json", "gemma config.json",
                                  "random bytes gguf", "gemma gguf", "missing shard"])
def test_bad_input_is_a_user_error(kind, tmp_path, tmp_cache, hf_llama):
  path, named = _bad_path(kind, tmp_path, hf_llama)
  with pytest.raises(UserError) as e:
    load_model(path, verbose=False)
  assert named in str(e.value)
  assert e.value.fix


@pytest.mark.model
def test_truncated_gguf_is_a_user_error(gguf_path, tmp_path, tmp_cache):
  path = tmp_path / "truncated.gguf"
  with open(gguf_path, "rb") as f:
    path.write_bytes(f.read(1 << 20))
  with pytest.raises(UserError) as e:
    load_model(str(path), verbose=False)
  assert str(path) in str(e.value) and "truncated" in str(e.value)


def test_the_default_model_and_the_variable_that_changes_it(hf_llama, tmp_cache, monkeypatch):
  """No --model: the 1.5B model (named, not fetched here); $TOKENLABEL_MODEL, a name or a path, replaces it; a bad
  value is refused naming the variable; --model wins over it."""
  from tokenlabel_jax import loading
  from tokenlabel_jax.loading import embedded
  monkeypatch.setattr(embedded, "gguf_path", lambda name: f"<{name}>")
  monkeypatch.delenv("TOKENLABEL_MODEL")
  assert embedded.NAME == "qwen2.5-coder-1.5b"
  assert [loading.resolve(s) for s in (None, "", "default")] == ["<qwen2.5-coder-1.5b>"] * 3
  monkeypatch.setenv("TOKENLABEL_MODEL", "SmolLM2-135M-Instruct")
  assert loading.resolve(None) == "<smollm2-135m-instruct>"
  assert loading.resolve("qwen2.5-coder-0.5b") == "<qwen2.5-coder-0.5b>"
  monkeypatch.setenv("TOKENLABEL_MODEL", hf_llama[0])
  assert loading.resolve(None) == hf_llama[0] and load_model(verbose=False).cfg.dim == CFG.dim
  monkeypatch.setenv("TOKENLABEL_MODEL", "qwen-9b")
  with pytest.raises(UserError, match=r"'qwen-9b' \(from \$TOKENLABEL_MODEL\) not found"):
    loading.resolve(None)


def test_prepare_converts_once_and_then_leaves_the_weights_alone(hf_llama, tmp_cache, monkeypatch):
  """scripts/setup.sh's step: the first call converts (the cache entry appears), a second loads nothing."""
  from tokenlabel_jax import loading
  assert loading.prepare(hf_llama[0]) == (hf_llama[0], True)
  assert glob.glob(os.path.join(str(tmp_cache), "converted", "*", "model.json"))
  def no_load(*args, **kwargs):
    raise AssertionError("loaded again")
  monkeypatch.setattr(loading, "_load", no_load)
  assert loading.prepare(hf_llama[0]) == (hf_llama[0], False)
  with pytest.raises(AssertionError, match="loaded again"):  # a bfloat16 entry is another one
    loading.prepare(hf_llama[0], "bfloat16")


def test_available_memory_is_read_from_meminfo(tmp_path):
  meminfo = tmp_path / "meminfo"
  meminfo.write_text("MemTotal:       24000000 kB\nMemFree:         1000000 kB\nMemAvailable:    7500000 kB\n")
  from tokenlabel_jax.loading import embedded
  assert embedded.available_gb(str(meminfo)) == pytest.approx(7.5)
  meminfo.write_text("MemTotal:       24000000 kB\n")  # an old kernel: nothing said, nothing warned
  assert embedded.available_gb(str(meminfo)) is None and embedded.available_gb(str(tmp_path / "none")) is None
  warning = embedded.memory_warning("qwen2.5-coder-1.5b", 7.5)
  assert "11.3 GB" in warning and "7.5 GB" in warning and "--model=smollm2-135m-instruct" in warning
  assert embedded.memory_warning("qwen2.5-coder-1.5b", 12.0) is None and embedded.memory_warning("qwen2.5-coder-1.5b",
                                                                                                  None) is None


@pytest.mark.model
def test_a_packaged_model_too_big_for_the_memory_available_is_warned_of(embedded_model, monkeypatch, capsys):
  """Before the weights load: the kernel would otherwise kill the run midway without a word."""
  from tokenlabel_jax.loading import embedded
  monkeypatch.setattr(embedded, "available_gb", lambda: 1.5)
  load_model("smollm2-135m-instruct", verbose=False)
  assert "smollm2-135m-instruct takes up to about 2.8 GB of memory and 1.5 GB is available" in capsys.readouterr().err
  monkeypatch.setattr(embedded, "available_gb", lambda: 20.0)
  load_model("smollm2-135m-instruct", verbose=False)
  assert "warning" not in capsys.readouterr().err


def test_unknown_dtype_is_a_user_error(hf_llama, tmp_cache):
  with pytest.raises(UserError, match="float16"):
    load_model(hf_llama[0], dtype="float16", verbose=False)


def test_exit_on_user_error_in_process(tmp_path, tmp_cache, capsys):
  missing = str(tmp_path / "nothing.gguf")

  @exit_on_user_error
  def main():
    load_model(missing, verbose=False)

  with pytest.raises(SystemExit) as e:
    main()
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and missing in err and "fix:" in err and "Traceback" not in err

  @exit_on_user_error
  def buggy():
    raise ValueError("a bug, not a user error")

  with pytest.raises(ValueError):  # real bugs keep their traceback
    buggy()


def test_exit_on_user_error_subprocess():
  code = ("from tokenlabel_jax.errors import UserError, exit_on_user_error\n"
          "@exit_on_user_error\n"
          "def main():\n"
          "  raise UserError('/data/model.gguf is broken', 'download it again')\n"
          "main()\n")
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
  assert proc.returncode == 2
  assert proc.stderr.strip() == "error: /data/model.gguf is broken\n  fix: download it again"
  assert proc.stdout == ""
