"""The SAE pipeline on a tiny random model: the forward's layer-range hook, the TopK SAE, resumable activations, the
export's sampling, and every stage end to end into records the labeler reads."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tinymodel
from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import labeling
from tokenlabel_jax import model as model_lib
from tokenlabel_jax import optimization as opt_lib
from tokenlabel_jax.errors import UserError
from tokenlabel_jax.sae import activations as act_lib
from tokenlabel_jax.sae import autoencoder as sae_lib
from tokenlabel_jax.sae import corpus as corpus_lib
from tokenlabel_jax.sae import export as export_lib
from tokenlabel_jax.sae import pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny():
  return tinymodel.tiny_model(n_layers=3)


def _tokens(B=2, S=12, seed=0):
  return jnp.asarray(np.random.default_rng(seed).integers(0, 256, (B, S)), jnp.int32)


# ------------------------------------------------------------------------------------------------------------------
# The forward's hook.


def test_forward_from_a_layer_continues_the_full_forward(tiny):
  """Layers 0..l then l..L from the residual entering l give the full forward's hidden states."""
  params, cfg = tiny.params, tiny.cfg
  toks = _tokens()
  pos = jnp.broadcast_to(jnp.arange(toks.shape[1]), toks.shape)
  x = model_lib.embed(params, toks)
  h_full, _, resid = model_lib.forward(params, cfg, x, pos, return_layers=True)
  for layer in (1, 2):
    h_rest, _, _ = model_lib.forward(params, cfg, resid[layer], pos, layers=(layer, cfg.n_layers))
    np.testing.assert_allclose(h_rest, h_full, atol=1e-5)
    _, _, head = model_lib.forward(params, cfg, x, pos, return_layers=True, layers=(0, layer))
    np.testing.assert_allclose(head, resid[:layer], atol=1e-6)


def test_mlp_tap_is_silu_gate_times_up(tiny):
  """With layer 1's attention output zeroed, its MLP input is the normed residual: the tap is checked by hand and
  its down-projection is the layer's whole update."""
  params, cfg = tiny.params, tiny.cfg
  params = jax.tree.map(lambda a: a, params)
  params["layers"] = dict(params["layers"], wo_LxHExD=params["layers"]["wo_LxHExD"].at[1].set(0.0))
  toks = _tokens()
  pos = jnp.broadcast_to(jnp.arange(toks.shape[1]), toks.shape)
  x = model_lib.embed(params, toks)
  _, _, resid = model_lib.forward(params, cfg, x, pos, return_layers=True)
  _, _, mlp = model_lib.forward(params, cfg, x, pos, return_layers="mlp")
  w = jax.tree.map(lambda a: a[1], params["layers"])
  h = model_lib.rms_norm(resid[1], w["mlp_norm_LxD"], cfg.norm_eps)
  want = jax.nn.silu(h @ w["w_gate_LxDxF"]) * (h @ w["w_up_LxDxF"])
  np.testing.assert_allclose(mlp[1], want, atol=1e-5)
  np.testing.assert_allclose(resid[2] - resid[1], mlp[1] @ w["w_down_LxFxD"], atol=1e-4)
  with pytest.raises(ValueError):
    model_lib.forward(params, cfg, x, pos, return_layers="attn")


# ------------------------------------------------------------------------------------------------------------------
# The TopK SAE.


def _sparse_data(n, D=16, atoms=32, k=3, seed=0):
  """x = sum of k unit atoms of a fixed random dictionary with positive weights (+ an offset): what an SAE should
  recover. `seed` draws the samples; the dictionary is always the same."""
  dict_AxD = np.random.default_rng(1234).normal(size=(atoms, D))
  rng = np.random.default_rng(seed)
  dict_AxD /= np.linalg.norm(dict_AxD, axis=-1, keepdims=True)
  x = np.zeros((n, D))
  for i in range(n):
    x[i] = rng.uniform(0.5, 2.0, k) @ dict_AxD[rng.choice(atoms, k, replace=False)]
  return (x + 0.3).astype(np.float32)


def test_encode_is_k_sparse_and_decode_matches_dense():
  p = sae_lib.init_params(jax.random.PRNGKey(0), 16, 64, np.zeros(16))
  p["b_enc_M"] = jnp.linspace(-1, 1, 64)
  x = jnp.asarray(_sparse_data(20))
  vals, idx = sae_lib.encode(p, x, 5)
  z = sae_lib.dense_codes(vals, idx, 64)
  assert np.all(np.asarray(vals) >= 0) and np.all(np.sum(np.asarray(z) > 0, -1) <= 5)
  pre = np.asarray(sae_lib.pre_activations(p, x))
  np.testing.assert_allclose(np.sort(pre, -1)[:, -5:][:, ::-1], np.asarray(jax.lax.top_k(pre, 5)[0]), atol=1e-6)
  np.testing.assert_allclose(sae_lib.decode(p, vals, idx), z @ p["w_dec_MxD"] + p["b_pre_D"], atol=1e-5)
  _, parts = sae_lib.loss_fn(p, x, jnp.zeros(64, bool), dataclasses.replace(sae_lib.SAEConfig(), k=5))
  np.testing.assert_allclose(float(parts["fvu"]), sae_lib.evaluate(p, np.asarray(x), 1.0, 5)["fvu"], rtol=1e-4)
  off, _ = sae_lib.encode(dict(p, b_enc_M=p["b_enc_M"] - 100.0), x, 5)  # every pre-activation negative: no latent on
  assert not np.asarray(off).any()


def test_fvu_typical_leaves_out_only_the_outsized_tokens():
  """One token with a norm far beyond the rest dominates FVU; fvu_typical is the same ratio over the other tokens."""
  p = sae_lib.init_params(jax.random.PRNGKey(1), 16, 64, np.zeros(16))
  x = _sparse_data(200)
  x[7] *= 1000.0
  ev = sae_lib.evaluate(p, x, 1.0, 5, batch_size=64)
  vals, idx = sae_lib.encode(p, jnp.asarray(x), 5)
  err = np.sum(np.square(x - np.asarray(sae_lib.decode(p, vals, idx))), -1)
  dev = np.sum(np.square(x - x.mean(0)), -1)
  rest = np.arange(200) != 7
  assert ev["outsized_fraction"] == pytest.approx(1 / 200)
  np.testing.assert_allclose(ev["fvu_typical"], err[rest].sum() / dev[rest].sum(), rtol=1e-4)
  np.testing.assert_allclose(ev["fvu"], err.sum() / dev.sum(), rtol=1e-4)


def test_sae_learns_a_sparse_dictionary_with_unit_decoder_rows():
  cfg = sae_lib.SAEConfig(n_latents=64, k=3, k_aux=16, learning_rate=3e-3, batch_size=128, aux_dead_tokens=1000)
  x_train, x_held = _sparse_data(4096), _sparse_data(1024, seed=1)
  state = sae_lib.init_state(cfg, 16, x_train.mean(0))
  before = sae_lib.evaluate(state.params, x_held, 1.0, cfg.k)["fvu"]
  state = sae_lib.train(state, cfg, x_train, 1.0, steps=600)
  ev = sae_lib.evaluate(state.params, x_held, 1.0, cfg.k)
  assert before > 0.5 and ev["fvu"] < 0.15, (before, ev["fvu"])
  assert ev["l0"] <= 3
  np.testing.assert_allclose(np.linalg.norm(state.params["w_dec_MxD"], axis=-1), 1.0, atol=1e-5)


def test_auxk_gradient_reaches_only_dead_latents():
  """AuxK adds gradient to dead latents' encoder columns and decoder rows and to nothing alive."""
  cfg = sae_lib.SAEConfig(n_latents=64, k=3, k_aux=8)
  p = sae_lib.init_params(jax.random.PRNGKey(1), 16, 64, np.zeros(16))
  x = jnp.asarray(_sparse_data(64))
  dead = jnp.arange(64) >= 48
  g_with = jax.grad(lambda q: sae_lib.loss_fn(q, x, dead, cfg)[0])(p)
  g_without = jax.grad(lambda q: sae_lib.loss_fn(q, x, dead, dataclasses.replace(cfg, aux_coef=0.0))[0])(p)
  diff_dec = np.abs(np.asarray(g_with["w_dec_MxD"] - g_without["w_dec_MxD"])).sum(-1)
  diff_enc = np.abs(np.asarray(g_with["w_enc_DxM"] - g_without["w_enc_DxM"])).sum(0)
  assert diff_dec[48:].max() > 0 and diff_enc[48:].max() > 0
  assert diff_dec[:48].max() == 0 and diff_enc[:48].max() == 0
  _, aux = sae_lib.loss_fn(p, x, jnp.zeros(64, bool), cfg)
  assert float(aux["aux"]) == 0.0


def test_sae_training_resumes_bit_exactly(tmp_path):
  cfg = sae_lib.SAEConfig(n_latents=32, k=2, k_aux=8, batch_size=64, aux_dead_tokens=256)
  x = _sparse_data(512)
  full = sae_lib.train(sae_lib.init_state(cfg, 16, x.mean(0)), cfg, x, 1.0, steps=20)
  ck = sae_lib.Checkpointer(str(tmp_path / "ck"), {"a": 1})
  sae_lib.train(sae_lib.init_state(cfg, 16, x.mean(0)), cfg, x, 1.0, steps=10, save=ck.save, checkpoint_every=10)
  like = sae_lib.init_state(cfg, 16, x.mean(0))
  state, step = sae_lib.Checkpointer(str(tmp_path / "ck"), {"a": 1}).restore(like)
  assert step == 10
  resumed = sae_lib.train(state, cfg, x, 1.0, steps=20, start_step=10)
  for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert sae_lib.Checkpointer(str(tmp_path / "ck"), {"a": 2}).restore(like) is None  # other settings: not resumed


def test_loss_recovered_is_one_for_an_exact_reconstruction(tiny):
  """An SAE that reconstructs exactly (latents +x_i and -x_i, k = D) recovers all the loss, one that outputs zeros none.
  The clean loss is the plain forward's next-token loss over positions 1..S-2."""
  params, cfg = tiny.params, tiny.cfg
  D = cfg.dim
  eye = np.eye(D, dtype=np.float32)
  exact = {"b_pre_D": jnp.zeros(D), "w_enc_DxM": jnp.asarray(np.concatenate([eye, -eye], 1)),
           "b_enc_M": jnp.zeros(2 * D), "w_dec_MxD": jnp.asarray(np.concatenate([eye, -eye], 0))}
  toks = np.asarray(_tokens(B=4, S=16, seed=3))
  r = sae_lib.loss_recovered(params, cfg, exact, toks, layer=1, k=D, scale=0.5)
  assert abs(r["loss_recovered"] - 1.0) < 1e-3 and r["loss_zero"] > r["loss_clean"]
  logp = jax.nn.log_softmax(model_lib.forward_tokens(params, cfg, jnp.asarray(toks))[0], -1)
  want = -np.mean(np.take_along_axis(np.asarray(logp)[:, 1:-1], toks[:, 2:, None], -1))
  assert abs(r["loss_clean"] - want) < 1e-4
  nothing = dict(exact, w_dec_MxD=jnp.zeros((2 * D, D)))
  assert abs(sae_lib.loss_recovered(params, cfg, nothing, toks, layer=1, k=D, scale=0.5)["loss_recovered"]) < 1e-3


# ------------------------------------------------------------------------------------------------------------------
# Corpus and activations.


def test_tokenize_contexts_mixes_sources_deterministically():
  docs = {"a": ["aaaa"] * 10, "b": ["bbbbbb"] * 10}
  enc = lambda s: [ord(c) for c in s]
  t1, s1 = corpus_lib.tokenize_contexts(enc, docs, 8, 64, seed=0, separator="|")
  t2, _ = corpus_lib.tokenize_contexts(enc, docs, 8, 64, seed=0, separator="|")
  t3, _ = corpus_lib.tokenize_contexts(enc, docs, 8, 64, seed=1, separator="|")
  assert t1.shape == (8, 8) and np.array_equal(t1, t2) and not np.array_equal(t1, t3)
  assert set(s1.tolist()) == {0, 1}
  for row, src in zip(t1, s1):  # a context's source is the document its first token comes from
    assert chr(row[0]) in ("ab"[src], "|")
  with pytest.raises(UserError, match="fewer than one context"):
    corpus_lib.tokenize_contexts(enc, {"a": ["ab"]}, 8, 64)


def test_activations_resume_after_a_kill_equals_one_run(tiny, tmp_path):
  toks = np.asarray(_tokens(B=10, S=8, seed=5))
  kw = dict(layer=2, mlp_layer=1, neurons=np.array([3, 7, 100]), batch_size=4, fingerprint={"x": 1},
            log=lambda s: None)
  one = act_lib.cache_activations(tiny.params, tiny.cfg, toks, str(tmp_path / "one"), **kw)
  part = act_lib.cache_activations(tiny.params, tiny.cfg, toks, str(tmp_path / "two"), stop_after=1, **kw)
  assert part["done"] == 4 and not act_lib.is_complete(str(tmp_path / "two"), 10)
  two = act_lib.cache_activations(tiny.params, tiny.cfg, toks, str(tmp_path / "two"), **kw)
  assert two["done"] == 10 and act_lib.is_complete(str(tmp_path / "two"), 10)
  np.testing.assert_array_equal(one["resid"], two["resid"])
  np.testing.assert_array_equal(one["mlp"], two["mlp"])
  pos = jnp.broadcast_to(jnp.arange(8), (10, 8))
  _, _, resid = model_lib.forward(tiny.params, tiny.cfg, model_lib.embed(tiny.params, jnp.asarray(toks)), pos,
                                  return_layers=True)
  _, _, mlp = model_lib.forward(tiny.params, tiny.cfg, model_lib.embed(tiny.params, jnp.asarray(toks)), pos,
                                return_layers="mlp")
  np.testing.assert_allclose(one["resid"], np.asarray(resid[2]), rtol=2e-3, atol=2e-3)
  np.testing.assert_allclose(one["mlp"], np.asarray(mlp[1])[..., [3, 7, 100]], rtol=2e-3, atol=2e-3)
  with open(tmp_path / "two" / "mlp.npy", "wb") as f:
    f.write(b"garbage")
  with open(tmp_path / "two" / "progress.json", "w") as f:
    json.dump({"done": 4, "fingerprint": json.load(open(tmp_path / "one" / "progress.json"))["fingerprint"]}, f)
  with pytest.raises(UserError, match="delete"):
    act_lib.cache_activations(tiny.params, tiny.cfg, toks, str(tmp_path / "two"), **kw)
  with pytest.raises(UserError, match="layer"):
    act_lib.cache_activations(tiny.params, tiny.cfg, toks, str(tmp_path / "x"), **{**kw, "layer": 3})


# ------------------------------------------------------------------------------------------------------------------
# Export.


def test_select_contexts_spans_quantiles_near_misses_and_splits():
  N = 400
  rng = np.random.default_rng(0)
  ctx_max = np.where(np.arange(N) % 2 == 0, rng.uniform(0.1, 10, N), 0.0)
  heldout = np.arange(N) >= 300
  near = np.arange(N) % 4 == 1  # inactive contexts holding a top token
  cfg = export_lib.ExportConfig(n_active=10, n_quantiles=5, n_near=3, n_random=4, min_active=3)
  chosen = export_lib.select_contexts(ctx_max, 0.0, heldout, near, cfg, np.random.default_rng(1))
  for split, ids in (("train", np.flatnonzero(~heldout)), ("heldout", np.flatnonzero(heldout))):
    rows = [(c, k) for c, s, k in chosen if s == split]
    assert all(heldout[c] == (split == "heldout") for c, _ in rows)
    act = ids[ctx_max[ids] > 0]
    ranked = act[np.argsort(-ctx_max[act])]
    top = [c for c, k in rows if k == "q0"]
    assert sorted(top) == sorted(ranked[:2].tolist())  # the top bin shows the strongest contexts
    bins = np.array_split(ranked, 5)
    for q in range(5):
      qs = [c for c, k in rows if k == f"q{q}"]
      assert len(qs) == 2 and set(qs) <= set(bins[q].tolist())
    nm = [c for c, k in rows if k == "near_miss"]
    assert len(nm) == 3 and all(near[c] and ctx_max[c] == 0 for c in nm)
    rnd = [c for c, k in rows if k == "random"]
    assert len(rnd) == 4 and all(ctx_max[c] == 0 for c in rnd) and not set(rnd) & set(nm)
  assert export_lib.select_contexts(np.where(np.arange(N) < 2, 1.0, 0.0), 0.0, heldout, near, cfg,
                                    np.random.default_rng(0)) is None


def test_latent_activations_from_codes():
  idx = np.array([[[0, 2], [2, 1]], [[1, 0], [2, 0]]])  # N=2, S=2, K=2
  val = np.array([[[1.0, 0.5], [2.0, 0.0]], [[3.0, 0.25], [0.0, 0.0]]], np.float16)
  got = dict(export_lib.latent_activations(idx, val))
  assert sorted(got) == [0, 1, 2]  # every latent with a positive value; latent ids only, no zeros-only latent
  np.testing.assert_array_equal(got[0], [[1.0, 0.0], [0.25, 0.0]])
  np.testing.assert_array_equal(got[1], [[0.0, 0.0], [3.0, 0.0]])
  np.testing.assert_array_equal(got[2], [[0.5, 2.0], [0.0, 0.0]])


# ------------------------------------------------------------------------------------------------------------------
# End to end.


def _write_corpus(d, n_docs=6, seed=0):
  rng = np.random.default_rng(seed)
  words = "the cat sat on a mat while dogs ran to big red barns and small blue cups of tea 1 2 3".split()
  os.makedirs(d, exist_ok=True)
  for i in range(n_docs):
    with open(os.path.join(d, f"d{i}.txt"), "w") as f:
      f.write(" ".join(rng.choice(words, 500)) + ".")
  return d


PC = pipeline.PipelineConfig(tokens=10_000, context_len=32, layer=2, mlp_layer=1, n_neurons=6, batch_size=16,
                             heldout_fraction=0.25, epochs=6, dead_tokens=4000, loss_contexts=8,
                             sae=sae_lib.SAEConfig(n_latents=96, k=6, k_aux=24, batch_size=256,
                                                   aux_dead_tokens=2000),
                             export=export_lib.ExportConfig(n_active=10, n_near=4, n_random=6),
                             max_latents=40)


def test_pipeline_end_to_end_is_labelable_and_cached(tiny, tmp_path):
  pc = dataclasses.replace(PC, corpus=_write_corpus(str(tmp_path / "txt")))
  out = str(tmp_path / "run")
  logs = []
  result = pipeline.run(tiny, pc, out, log=logs.append)
  sae = result["sae"]
  assert 0 < sae["fvu"] < 0.5 and sae["l0"] <= 6 and 0 <= sae["dead_fraction"] <= 1
  # On a random model loss recovered has no meaningful range (test_loss_recovered_* checks its computation).
  assert np.isclose(sae["loss_recovered"],
                    (sae["loss_zero"] - sae["loss_sae"]) / (sae["loss_zero"] - sae["loss_clean"]))
  lat = data_lib.load_features(os.path.join(out, "latents"))
  neu = data_lib.load_features(os.path.join(out, "neurons"))
  assert 10 <= len(lat) <= 40 and len(neu) >= 3
  ctx = np.load(os.path.join(out, "corpus", "contexts.npy"))
  held = set(range(len(ctx) - int(round(0.25 * len(ctx))), len(ctx)))
  for feat in lat[:5]:
    raw = [json.loads(l) for l in open(os.path.join(out, "latents", feat.name + ".jsonl"))]
    assert {r["split"] for r in raw} == {"train", "heldout"}
    assert all((r["context"] in held) == (r["split"] == "heldout") for r in raw)
    for r in raw:  # the tokens and activations are those of that context
      assert "".join(r["tokens"]) == tiny.tokenizer.decode(ctx[r["context"]])
    kinds = {r["kind"] for r in raw}
    assert {"q0", "random"} <= kinds
    assert any(a > 0 and a != 1.0 for r in raw for a in r["activations"])  # continuous, not binarized
  # The labeler takes an exported latent as it is.
  lcfg = opt_lib.LabelConfig(steps=4, seeds=1, batch_size=8, n_train=16, n_val=8, n_heldout=8, checkpoint_every=4,
                             log_every=4, top_k=2, vocab_filter="all")
  res = labeling.label_features(tiny, [lat[0]], disc_lib.get("namer"), lcfg, str(tmp_path / "labels"))
  assert 0 <= res[0]["heldout"]["auc"] <= 1
  # A second run reuses every stage: no activations, SAE steps, codes or export recomputed.
  logs2 = []
  again = pipeline.run(tiny, pc, out, log=logs2.append)
  assert again["sae"] == sae and not any(s.startswith(("activations", "sae: step", "codes", "export")) for s in logs2)
  # A changed SAE setting retrains the SAE but keeps the cached activations.
  logs3 = []
  pipeline.run(tiny, dataclasses.replace(pc, sae=dataclasses.replace(pc.sae, k=4)), out, log=logs3.append)
  assert any(s.startswith("sae: step") for s in logs3) and not any(s.startswith("activations") for s in logs3)


def _run_cli(*args):
  return subprocess.run([sys.executable, "-m", "tokenlabel_jax.sae", *args], capture_output=True, text=True,
                        cwd=ROOT, timeout=120, check=False, env=dict(os.environ, PYTHONPATH=ROOT))


def test_cli_errors_are_one_message(tmp_path):
  proc = _run_cli(f"--output_dir={tmp_path}/o", f"--corpus={tmp_path}/missing")
  assert proc.returncode == 2 and "corpus" in proc.stderr and "fix:" in proc.stderr and "Traceback" not in proc.stderr
  proc = _run_cli(f"--output_dir={tmp_path}/o", "--k=0")  # was: half an hour of activations, then nothing learned
  assert proc.returncode == 2 and "k=0 is not allowed" in proc.stderr and "(--k)" in proc.stderr
  assert "Traceback" not in proc.stderr
  proc = _run_cli(f"--output_dir={tmp_path}/o", "--heldout_fraction=1.5")
  assert (proc.returncode == 2 and "heldout_fraction=1.5 is not in (0, 1)" in proc.stderr
          and "Traceback" not in proc.stderr)
  proc = _run_cli(f"--output_dir={tmp_path}/o", f"--corpus={tmp_path}", "--model=/nonexistent/m")
  assert proc.returncode == 2 and "/nonexistent/m" in proc.stderr and "Traceback" not in proc.stderr
  blocker = tmp_path / "file"
  blocker.write_text("x")
  proc = _run_cli(f"--output_dir={blocker}/o", f"--corpus={tmp_path}")  # was: a traceback, before any work
  assert proc.returncode == 2 and "cannot write to --output_dir" in proc.stderr and "Traceback" not in proc.stderr
  proc = _run_cli(f"--output_dir={tmp_path}/o", "--k=abc")  # exits 2 as every launcher's bad flag does (absl: 1)
  assert proc.returncode == 2 and "--k=abc" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.model
def test_cli_says_when_the_corpus_is_too_small_to_export_a_latent(tmp_path):
  """Was: `export: 0 latents`, then "labelable: python -m tokenlabel_jax.label --features=.../latents" for an empty
  folder."""
  (tmp_path / "c").mkdir()
  (tmp_path / "c" / "a.txt").write_text("The cat sat on the mat. " * 40)  # 256 tokens: 4 contexts
  proc = _run_cli(f"--output_dir={tmp_path}/o", f"--corpus={tmp_path}/c", "--tokens=20000", "--n_latents=64",
                  "--k=4", "--max_latents=3", "--n_neurons=2")
  assert proc.returncode == 2 and "no latent fires in 3 or more contexts" in proc.stderr, proc.stderr[-2000:]
  assert "labelable" not in proc.stdout and "Traceback" not in proc.stderr and '"fvu"' in proc.stdout


@pytest.mark.model
def test_cli_ends_with_a_label_command_for_the_model_it_ran_on(tmp_path):
  """The last line hands on a command that runs: the exported latents, labeled by the subject model itself (the 135M
  model by default, as the README's whole-SAE command does; without --model it would be the 1.5B discriminator)."""
  (tmp_path / "c").mkdir()
  words = ["cat", "dog", "river", "table", "seven", "blue", "runs", "quietly", "London", "bread", "music", "cold"]
  rng = np.random.default_rng(0)
  text = " ".join(" ".join(rng.choice(words, 8)) + "." for _ in range(400))
  (tmp_path / "c" / "a.txt").write_text(text)
  proc = _run_cli(f"--output_dir={tmp_path}/o", f"--corpus={tmp_path}/c", "--tokens=20000", "--n_latents=64",
                  "--k=4", "--max_latents=3", "--n_neurons=2", "--heldout_fraction=0.3")
  assert proc.returncode == 0, proc.stderr[-2000:]
  last = proc.stdout.strip().splitlines()[-1]
  assert last == (f"labelable: python -m tokenlabel_jax.label --features={tmp_path}/o/latents "
                  f"--output_dir={tmp_path}/o/labels --model=smollm2-135m-instruct --select_margin=0 "
                  "--features_per_batch=16"), last
  assert os.listdir(tmp_path / "o" / "latents")


def test_a_text_folder_skips_files_that_are_not_utf8_text(tmp_path, capsys):
  """Was: read with errors="replace", so a Latin-1 file's accents and a renamed binary's bytes entered the corpus."""
  (tmp_path / "sub").mkdir()
  (tmp_path / "a.txt").write_text("plain text", encoding="utf-8")
  (tmp_path / "sub" / "b.txt").write_bytes("\ufeffcaf\u00e9 au lait".encode("utf-8"))  # a BOM, as Windows writes
  (tmp_path / "latin.txt").write_bytes("caf\u00e9".encode("latin-1"))
  (tmp_path / "binary.txt").write_bytes(b"\x7fELF\x02\x01\x00\x00")
  assert corpus_lib.read_documents(str(tmp_path)) == {tmp_path.name: ["plain text", "caf\u00e9 au lait"]}
  assert "skipped 2 file(s) that are not UTF-8 text: 'binary.txt', 'latin.txt'" in capsys.readouterr().err
  for f in ("a.txt", "sub/b.txt"):
    (tmp_path / f).unlink()
  with pytest.raises(UserError, match="no text found"):
    corpus_lib.read_documents(str(tmp_path))


@pytest.mark.corpora
def test_debian_corpus_has_every_source():
  """The five Debian sources of scripts/install_corpora.sh are read, each into documents of real English text."""
  docs = corpus_lib.read_documents("debian")
  assert sorted(docs) == ["fortunes", "jargon", "kjv", "python_docs", "wordnet"]
  assert len(docs["kjv"]) == 1189  # one document per chapter
  assert any(d.startswith("In the beginning God created") for d in docs["kjv"])
  assert any(d.startswith("dog: ") for d in docs["wordnet"])
  assert all(len(v) > 400 for v in docs.values())


def _rec(tokens, acts, split):
  return data_lib.Record(tuple(tokens), np.asarray(acts, np.float32), split, "x")


# A small latent: peaks on cat (the strongest), dog, dog and rat in training; dog and cat again in held-out texts.
LATENT = data_lib.Feature("f", (
    _rec([" a", " dog", " ran"], [0, 3, 0], "train"), _rec([" the", " dog"], [0, 2], "train"),
    _rec([" big", " cat"], [0, 5], "train"), _rec([" a", " rat"], [0, 0.5], "train"),
    _rec([" dog", " sat"], [1, 0], "heldout"), _rec([" a", " cat", " ran"], [0, 2, 0], "heldout")))


def test_real_features_baselines_top_token_and_token_lookup():
  """experiments/real_features/real_features.py (its top token from experiments/common.py): the top-token label is the
  commonest peak token of the strongest train records; the token lookup scores held-out tokens by their mean train
  activation (a perfect token detector gets AUC 1)."""
  sys.path.insert(0, os.path.join(ROOT, "experiments", "real_features"))
  import real_features  # pylint: disable=import-outside-toplevel
  feat = LATENT
  assert real_features.baselines.top_token(feat, 0.0) == "dog"  # peaks: cat (the strongest), dog, dog, rat
  held = data_lib.sample_examples(feat, n=20, split="heldout", seed=0)
  assert real_features.token_lookup_auc(feat, held) == 1.0
  flipped = dataclasses.replace(feat, records=tuple(
      dataclasses.replace(r, activations=np.where(np.isin(r.tokens, [" dog", " cat"]), 0.0, 1.0).astype(np.float32))
      if r.split == "train" else r for r in feat.records))
  assert real_features.token_lookup_auc(flipped, held) == 0.0


def test_word_spread_counts_training_positives_by_word():
  """baselines.word_spread (result.json's positive_words; dominance.py's counts): the words at a feature's positive
  training tokens as the top-token baseline reads them (held-out records left out), their shares, and how many words
  make up half of them."""
  sys.path.insert(0, os.path.join(ROOT, "experiments", "real_features"))
  import dominance  # pylint: disable=import-outside-toplevel
  from tokenlabel_jax import baselines  # pylint: disable=import-outside-toplevel
  words = baselines.positive_word_counts(LATENT, 0.0)
  assert words == {"dog": 2, "cat": 1, "rat": 1}
  assert dominance.dominance(words, "dog") == 0.5 and baselines.words_for_half(words) == 1
  assert dominance.dominance(words, "cat") == 0.25
  assert baselines.word_spread(LATENT, 0.0, n=2) == {"occurrences": 4, "words_for_half": 1,
                                                      "top": [["dog", 0.5], ["cat", 0.25]]}
  above_one = baselines.positive_word_counts(LATENT, 1.0)
  assert dominance.dominance(above_one, "dog") == 2 / 3
  spread = baselines.positive_word_counts(dataclasses.replace(LATENT, records=LATENT.records[:4] + (
      _rec([" ox", " elk", " yak"], [1, 1, 1], "train"),)), 0.0)
  assert baselines.words_for_half(spread) == 3  # dog twice and two words once: 4 of the 7
  assert baselines.word_spread(dataclasses.replace(LATENT, records=LATENT.records[:3] + LATENT.records[4:]), 9.0) == {
      "occurrences": 0, "words_for_half": 0, "top": []}  # nothing positive: nothing to count, no error


def test_dominance_over_the_whole_sae(tmp_path, monkeypatch):
  """dominance.py --whole_sae: every latent file of an SAE run, each latent's d and words for half, summarized."""
  sys.path.insert(0, os.path.join(ROOT, "experiments", "real_features"))
  import dominance  # pylint: disable=import-outside-toplevel
  folder = tmp_path / "sae" / "latents"
  folder.mkdir(parents=True)
  def write(name, positives):  # one training record per positive word, and one held-out record
    lines = [{"tokens": [" the", " " + w], "activations": [0.0, 1.0 + i / 10], "split": "train"}
             for i, w in enumerate(positives)] + [{"tokens": [" a", " b"], "activations": [0.0, 1.0], "split": "heldout"}]
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
  write("latent_0", ["dog"] * 3 + ["cat"])  # mostly one word: d 0.75, one word for half
  write("latent_1", ["a", "b", "c", "d", "e", "f"])  # spread: the top word's share 1/6, three words for half
  monkeypatch.setattr(dominance.common, "RESULTS", str(tmp_path))
  monkeypatch.setattr(sys, "argv", ["dominance.py", "--whole_sae", f"--sae_run={tmp_path / 'sae'}", "--name=dom"])
  dominance.main()
  d, half = json.loads((tmp_path / "dom_whole_sae.json").read_text())["summary"]["rows"]
  assert (d["latents"], d["figure"], half["figure"]) == (2, "d", "words for half")
  assert d["q50"] == (0.75 + 1 / 6) / 2 and half["q50"] == 2.0
  assert d["share mostly one word"] == 0.5 and half["share mostly one word"] == 0.5


def test_real_features_resume_takes_earlier_scores_only_for_the_same_labels(tmp_path, monkeypatch):
  """A resumed real_features.py run takes the scorer figures and seconds of the rows its killed run wrote, for the
  same command only, and only where every label of the row (ours, baselines, explainer, combination) is the same."""
  sys.path.insert(0, os.path.join(ROOT, "experiments", "real_features"))
  import real_features  # pylint: disable=import-outside-toplevel
  def row(expl, scored):
    r = {"id": "latent_1", "label": " animal", "best_candidate": " animal",
         "baselines": {"top_token": {"label": "dog"}, "vocab_scan": {"label": " animal"},
                       "random": {"label": " kettle"}},
         "explainer": {"label": expl}, "combined": {"label": " animal"}}
    if scored:
      for i, slot in enumerate(real_features._slots(r)):  # pylint: disable=protected-access
        slot["scorer_auc"] = 0.6 + i / 100
      r.update(scorer="likelihood (m)", wall_s=42.0)
    return r
  monkeypatch.setattr(real_features.common, "RESULTS", str(tmp_path))
  monkeypatch.setattr(sys, "argv", ["real_features.py", "--skip=64", "--name=r"])
  command = "python experiments/real_features/real_features.py --skip=64 --name=r"
  with open(tmp_path / "r.json", "w") as f:
    json.dump({"command": command, "latents": [row("pets", True)],
               "timing": {"labeling_s_per_feature": {"latents": 7}}}, f)
  args = type("Args", (), {"name": "r"})
  earlier, wall = real_features.earlier_rows(args)
  assert wall == {"latents": 7} and earlier["latent_1"]["wall_s"] == 42.0
  new = row("pets", False)
  assert real_features._copy_scores(earlier["latent_1"], new)  # pylint: disable=protected-access
  got = [s["scorer_auc"] for s in real_features._slots(new)]  # pylint: disable=protected-access
  assert got == [0.6, 0.61, 0.62, 0.63, 0.64, 0.65]
  assert new["scorer"] == "likelihood (m)"
  other = row("cats", False)  # the explainer answered otherwise: nothing to take
  labels = real_features._slot_labels  # pylint: disable=protected-access
  assert labels(other) != labels(earlier["latent_1"])
  assert real_features._earlier_row(earlier, other) is None  # pylint: disable=protected-access
  assert real_features._earlier_row(earlier, new) is earlier["latent_1"]  # pylint: disable=protected-access
  assert not real_features._copy_scores(row("pets", False), new)  # pylint: disable=protected-access
  monkeypatch.setattr(sys, "argv", ["real_features.py", "--skip=32", "--name=r"])  # another command
  assert real_features.earlier_rows(args) == ({}, {})
  (tmp_path / "r.json").write_text('{"command": "python exp')  # a write cut off by a kill: start afresh
  assert real_features.earlier_rows(args) == ({}, {})


def test_pooled_versus_pairs_our_labels_by_feature(tmp_path, monkeypatch):
  """experiments/real_features/pooled.py --versus: our labels of one run against another run's on the same features,
  paired by id (features only one run holds are left out), under the namer and the scorer."""
  sys.path.insert(0, ROOT)
  from experiments.real_features import pooled  # pylint: disable=import-outside-toplevel
  def run(name, aucs, labels, reverse=False):
    rows = [{"id": f"latent_{i}", "label": lab, "best_candidate": lab, "heldout_auc": a, "scorer_auc": a / 2,
             "baselines": {"top_token": {"heldout_auc": 0.5, "scorer_auc": 0.4}}}
            for i, (a, lab) in enumerate(zip(aucs, labels))][::-1 if reverse else 1]
    (tmp_path / f"{name}.json").write_text(json.dumps({"command": f"python x.py --name={name}", "latents": rows}))
  run("new", [0.9, 0.8, 0.7, 0.6], [" a", " b", " c", " d"])
  run("old", [0.5, 0.8, 0.9], [" x", " b", " y"], reverse=True)  # in another order; latent_3 is not in it
  got = json.loads((tmp_path / "old.json").read_text())
  (tmp_path / "old.json").write_text(json.dumps(dict(got, latents=got["latents"][:1])))  # latent_2 ...
  (tmp_path / "old2.json").write_text(json.dumps(dict(got, latents=got["latents"][1:])))  # ... and the rest
  monkeypatch.setattr(pooled.common, "RESULTS", str(tmp_path))
  monkeypatch.setattr(sys, "argv", ["pooled.py", "new", "--name=vs", "--versus=old,old2"])
  pooled.main()
  got = json.loads((tmp_path / "vs.json").read_text())
  namer, scorer = got["summary"]["rows"]
  assert (got["summary"]["n"], got["summary"]["same_label"]) == (3, 1)
  assert (namer["better"], namer["worse"], namer["equal"]) == (1, 1, 1)
  assert (namer["median, these"], namer["median, versus"], namer["median, top token"]) == (0.8, 0.8, 0.5)
  assert scorer["judge"] == "scorer" and scorer["median, these"] == 0.4
  assert (namer["better, against the top token"], namer["worse, against the top token"]) == (3, 0)
  assert (scorer["better, against the top token"], scorer["worse, against the top token"]) == (1, 1)
  plain = [dict(r) for r in json.loads((tmp_path / "old.json").read_text())["latents"]
           + json.loads((tmp_path / "old2.json").read_text())["latents"]]
  for r in plain:  # a run made without --scorer_model: compared under the namer alone
    del r["scorer_auc"]
  (tmp_path / "plain.json").write_text(json.dumps({"command": "python x.py --name=plain", "latents": plain}))
  monkeypatch.setattr(sys, "argv", ["pooled.py", "new", "--name=vs_plain", "--versus=plain"])
  pooled.main()
  assert json.loads((tmp_path / "vs_plain.json").read_text())["summary"]["rows"] == [namer]


def test_pooled_slices_without_the_explainer(tmp_path, monkeypatch):
  """experiments/real_features/pooled.py on slices run without --explainer (the 1.5B model's ask rule): the pooled
  medians come from the union of the slices, and only the comparisons the rows hold are counted."""
  sys.path.insert(0, ROOT)
  from experiments.real_features import pooled  # pylint: disable=import-outside-toplevel
  def row(i, ours, top, scan, label):
    def b(a):
      return {"label": " w", "heldout_auc": a, "scorer_auc": a - 0.1}
    return {"id": f"latent_{i}", "label": label, "best_candidate": " w", "heldout_auc": ours, "scorer_auc": ours - 0.2,
            "scorer": "likelihood", "token_lookup_auc": 0.8,
            "baselines": {"top_token": b(top), "vocab_scan": b(scan), "random": b(0.5)}}
  slices = {"s1": [row(0, 0.9, 0.6, 0.9, " a"), row(1, 0.7, 0.8, 0.6, None)],
            "s2": [row(2, 0.6, 0.5, 0.7, " c")]}
  for name, rows in slices.items():
    (tmp_path / f"{name}.json").write_text(json.dumps({"command": f"python x.py --a=1 --name={name}", "latents": rows}))
  monkeypatch.setattr(pooled.common, "RESULTS", str(tmp_path))
  monkeypatch.setattr(sys, "argv", ["pooled.py", "s1", "s2", "--name=pool"])
  pooled.main()
  got = json.loads((tmp_path / "pool.json").read_text())
  s = got["summary"]
  assert (s["n"], s["median_auc"], s["median_top_token_auc"], s["median_vocab_scan_auc"], s["no_label"]) == (
      3, 0.7, 0.6, 0.7, 1)
  assert s["slices"] == {"s1": 2, "s2": 1} and "median_explainer_auc" not in s
  by = {(r["judge"], r["against"]): (r["better"], r["worse"], r["equal"]) for r in got["rows"]}
  assert set(by) == {(j, a) for j in ("namer", "scorer") for a in ("top token", "exact scan")}
  assert by[("namer", "top token")] == (2, 1, 0) and by[("namer", "exact scan")] == (1, 1, 1)
  assert s["median_scorer_auc"] == pytest.approx(0.5) and s["median_top_token_scorer_auc"] == pytest.approx(0.5)
  (tmp_path / "s2.json").write_text(json.dumps({"command": "python x.py --a=2 --name=s2", "latents": slices["s2"]}))
  with pytest.raises(SystemExit, match="different settings"):
    pooled.main()


def test_judge_latents_row_scores_each_label_where_it_was_scored():
  """experiments/real_features/judge_latents.py: the judge's label takes the judge run's held-out AUC, every other
  label its own reference entry (looked up as written), and a label without one counts at chance; the summary's sign
  test counts the judge's label against the top token per latent, under each judge."""
  from experiments.real_features import judge_latents  # pylint: disable=import-outside-toplevel
  feat = data_lib.Feature("latent_7", (data_lib.Record((" a", " dog"), np.asarray([0, 2], np.float32), "train", "x"),))
  labels = {"namer": " animal", "top token": "dog", "random": " kettle", "judge": " pets"}
  jr = {"label": None, "heldout": {"auc": 0.8}, "wall_time_s": 3.0,
        "references": {" animal": {"auc": 0.7}, "dog": {"auc": 0.6}},  # ' kettle' was not scored
        "verification": [{"label": " pets", "val_loss": 0.2}, {"label": " noun", "val_loss": 0.1}]}
  nr = {"label": " animal", "heldout": {"auc": 0.9}}
  scored = {" pets": 0.75, " animal": 0.72, "dog": 0.9}
  r = judge_latents.row(feat, labels, nr, jr, scored, 0.95, 1.0)
  assert [r[f"{k}, judge AUC"] for k in judge_latents.LABELS] == [0.8, 0.7, 0.6, 0.5]
  assert [r[f"{k}, scorer AUC"] for k in judge_latents.LABELS] == [0.75, 0.72, 0.9, 0.5]
  assert r["judge top 5 by validation"] == [" noun", " pets"] and not r["judge gave a label"] and r["namer gave a label"]
  s = judge_latents.summarize([r, dict(r, **{"judge, judge AUC": 0.55}), dict(r, **{"judge, judge AUC": 0.6})])
  assert s["judge: judge label above top token"] == "1 of 3 (below 1)"  # a tie counts neither way
  assert s["scorer: judge label above top token"] == "0 of 3 (below 3)" and s["median judge AUC, judge"] == 0.6
