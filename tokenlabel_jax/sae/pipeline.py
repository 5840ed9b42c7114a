"""The stages chained, each cached in its own folder under the output directory and redone only when its settings
(or an earlier stage's) change:

  corpus/        contexts.npy (N x S token ids), sources.npy, meta.json
  activations/   resid.npy, mlp.npy (float16), progress.json          (resumable)
  sae/           checkpoints/ (orbax, resumable), metrics.json
  codes/         idx.npy, val.npy: every token's TopK code
  latents/       one <feature>.jsonl per exported latent   \\  labelable: python -m tokenlabel_jax.label
  neurons/       one <feature>.jsonl per exported neuron    /  --features=<dir>
  export.json    which features were exported, their thresholds and firing statistics
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from tokenlabel_jax.errors import UserError
from tokenlabel_jax.loading import LoadedModel
from tokenlabel_jax.sae import activations as act_lib
from tokenlabel_jax.sae import autoencoder as sae_lib
from tokenlabel_jax.sae import corpus as corpus_lib
from tokenlabel_jax.sae import export as export_lib


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  corpus: str = "debian"
  tokens: int = 2_000_000
  context_len: int = 64
  layer: int = 15
  mlp_layer: int = 15
  n_neurons: int = 64  # MLP neurons kept (a seeded uniform sample of the layer's)
  batch_size: int = 16  # contexts per forward pass
  heldout_fraction: float = 0.1  # last contexts: SAE metrics and the labels' held-out split
  sae: sae_lib.SAEConfig = sae_lib.SAEConfig()
  # Passes of the SAE over the training tokens. One is what docs/real_features.md's figures measured on 2M tokens
  # (FVU 0.204 on typical tokens, no dead latents, loss recovered 0.982: every target met); more cost that much more
  # time.
  epochs: float = 1.0
  dead_tokens: int = 1_000_000  # dead = no firing over this many last training tokens (or all, if fewer)
  loss_contexts: int = 64  # held-out contexts for loss recovered
  export: export_lib.ExportConfig = export_lib.ExportConfig()
  max_latents: int = 0  # export at most this many alive latents (seeded uniform sample); 0: all
  neuron_quantile: float = 0.99  # a neuron "fires" above this quantile of its activations
  seed: int = 0


def _fp(obj: Any) -> str:
  return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read_json(path: str) -> dict[str, Any] | None:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _write_json(path: str, obj: Any) -> None:
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=1)
  os.replace(path + ".tmp", path)


def run(m: LoadedModel, pc: PipelineConfig, out: str, log: Callable[[str], None] | None = None) -> dict[str, Any]:
  """Runs (or resumes) every stage; returns the SAE metrics and the export summary."""
  log = log or (lambda s: print(s, file=sys.stderr, flush=True))
  os.makedirs(out, exist_ok=True)
  tokens_NxS, fp_corpus = _corpus(m, pc, os.path.join(out, "corpus"), log)
  N, S = tokens_NxS.shape
  n_held = max(1, int(round(pc.heldout_fraction * N)))
  if N - n_held < 1:
    raise UserError(f"only {N} contexts: none left for training", "raise --tokens or lower --heldout_fraction")
  heldout_N = np.arange(N) >= N - n_held

  neurons = np.sort(np.random.default_rng(pc.seed).permutation(m.cfg.hidden_dim)[:pc.n_neurons])
  act_dir = os.path.join(out, "activations")
  fp_act = {"corpus": fp_corpus, "model": m.cfg.name, "dim": m.cfg.dim}
  acts = act_lib.cache_activations(m.params, m.cfg, tokens_NxS, act_dir, layer=pc.layer, mlp_layer=pc.mlp_layer,
                                   neurons=neurons, batch_size=pc.batch_size, fingerprint=fp_act, log=log)
  fp_act = _fp([fp_act, pc.layer, pc.mlp_layer, neurons.tolist()])

  resid = acts["resid"]
  train_x = _TokenRows(resid, np.flatnonzero(~heldout_N))
  held_x = _TokenRows(resid, np.flatnonzero(heldout_N))
  sae, scale, metrics = _sae(m, pc, os.path.join(out, "sae"), train_x, held_x, tokens_NxS[heldout_N], fp_act, log)
  codes = _codes(pc, os.path.join(out, "codes"), resid, sae, scale, _fp([fp_act, metrics["fingerprint"]]), log)
  summary = _export(m, pc, out, tokens_NxS, heldout_N, codes, acts["mlp"], neurons, metrics, log)
  return {"sae": {k: v for k, v in metrics.items() if k != "fingerprint"}, "export": summary}


class _TokenRows:
  """Residual vectors of positions 1..S-1 of the given contexts, as rows of a virtual (n x D) float16 array.

  Position 0 is left out: its residual stream is an attention sink with a norm far above the rest.
  """

  def __init__(self, resid_NxSxD: np.ndarray, contexts: np.ndarray):
    self.resid, self.contexts = resid_NxSxD, contexts
    self.per = resid_NxSxD.shape[1] - 1
    self.shape = (len(contexts) * self.per, resid_NxSxD.shape[2])

  def __getitem__(self, rows) -> np.ndarray:
    if isinstance(rows, slice):
      rows = np.arange(*rows.indices(self.shape[0]))
    rows = np.asarray(rows)
    return self.resid[self.contexts[rows // self.per], rows % self.per + 1]


def _corpus(m: LoadedModel, pc: PipelineConfig, d: str, log) -> tuple[np.ndarray, str]:
  fp = _fp({"corpus": os.path.abspath(pc.corpus) if pc.corpus != "debian" else "debian", "tokens": pc.tokens,
            "context_len": pc.context_len, "seed": pc.seed, "vocab": m.tokenizer.vocab_size, "model": m.cfg.name})
  meta = _read_json(os.path.join(d, "meta.json"))
  if meta and meta.get("fingerprint") == fp:
    try:
      return np.load(os.path.join(d, "contexts.npy")), fp
    except (OSError, ValueError):
      log(f"corpus: {d}/contexts.npy unreadable; rebuilding")
  t0 = time.time()
  docs = corpus_lib.read_documents(pc.corpus)
  tokens_NxS, src_N = corpus_lib.tokenize_contexts(m.tokenizer.encode, docs, pc.context_len, pc.tokens, pc.seed)
  os.makedirs(d, exist_ok=True)
  np.save(os.path.join(d, "contexts.npy"), tokens_NxS)
  np.save(os.path.join(d, "sources.npy"), src_N)
  names = sorted(docs)
  counts = {n: int(np.sum(src_N == i)) * pc.context_len for i, n in enumerate(names)}
  _write_json(os.path.join(d, "meta.json"), {"fingerprint": fp, "contexts": int(len(tokens_NxS)),
                                             "tokens": int(tokens_NxS.size), "tokens_by_source": counts,
                                             "documents_by_source": {n: len(docs[n]) for n in names}})
  log(f"corpus: {tokens_NxS.size} tokens in {len(tokens_NxS)} contexts ({counts}) in {time.time() - t0:.0f}s")
  if tokens_NxS.size < pc.tokens // 2:
    log(f"corpus: warning: only {tokens_NxS.size} of the {pc.tokens} tokens asked for")
  return tokens_NxS, fp


def _sae(m: LoadedModel, pc: PipelineConfig, d: str, train_x, held_x, held_tokens, fp_act: str, log):
  """Trains (or resumes, or reuses) the SAE; returns its params, the input scale and the held-out metrics."""
  scfg = pc.sae
  fp = _fp({"activations": fp_act, "sae": dataclasses.asdict(scfg), "epochs": pc.epochs, "n": train_x.shape[0]})
  os.makedirs(d, exist_ok=True)
  sample = train_x[np.random.default_rng(0).permutation(train_x.shape[0])[:20000]].astype(np.float32)
  scale = float(np.sqrt(sample.shape[1] / np.mean(np.sum(np.square(sample), -1))))
  b_pre = sample.mean(0) * scale
  steps = max(1, int(pc.epochs * train_x.shape[0] / scfg.batch_size))
  ckpt = sae_lib.Checkpointer(os.path.join(d, "checkpoints"), {"fingerprint": fp})
  state = sae_lib.init_state(scfg, train_x.shape[1], b_pre)
  restored = ckpt.restore(state)
  start = 0
  if restored is not None:
    state, start = restored
    log(f"sae: resumed at step {start}/{steps}")
  elif ckpt.manager.latest_step() is not None:
    log("sae: checkpoints were made with other settings; training anew")
    shutil.rmtree(os.path.join(d, "checkpoints"))
    ckpt = sae_lib.Checkpointer(os.path.join(d, "checkpoints"), {"fingerprint": fp})
  metrics_path = os.path.join(d, "metrics.json")
  metrics = _read_json(metrics_path)
  if metrics and metrics.get("fingerprint") == fp and start >= steps:
    if "fvu_typical" not in metrics:  # written before that figure existed: add it, no retraining
      ev = sae_lib.evaluate(state.params, held_x, scale, scfg.k)
      metrics.update(fvu_typical=ev["fvu_typical"], outsized_fraction=ev["outsized_fraction"])
      _write_json(metrics_path, metrics)
    return state.params, scale, metrics
  t0 = time.time()
  state = sae_lib.train(state, scfg, train_x, scale, steps, start, save=ckpt.save, log=log,
                        checkpoint_every=max(50, steps // 20))
  train_s = time.time() - t0
  seen = steps * scfg.batch_size
  window = min(pc.dead_tokens, seen)
  dead = float(np.mean(np.asarray(state.since_fired_M) >= window))
  ev = sae_lib.evaluate(state.params, held_x, scale, scfg.k)
  lr = sae_lib.loss_recovered(m.params, m.cfg, state.params, held_tokens[:pc.loss_contexts], pc.layer, scfg.k, scale)
  metrics = {"fingerprint": fp, "fvu": ev["fvu"], "fvu_typical": ev["fvu_typical"],
             "outsized_fraction": ev["outsized_fraction"], "l0": ev["l0"], "dead_fraction": dead,
             "dead_window_tokens": window,
             "heldout_never_fired_fraction": float(np.mean(ev["fired_M"] == 0)), **lr,
             "tokens": int(train_x.shape[0]), "heldout_tokens": int(ev["tokens"]), "steps": steps,
             "train_tokens_seen": seen, "train_s": round(train_s, 1), "scale": scale, "layer": pc.layer,
             "n_latents": scfg.n_latents, "k": scfg.k, "loss_contexts": int(min(pc.loss_contexts, len(held_tokens)))}
  np.save(os.path.join(d, "since_fired.npy"), np.asarray(state.since_fired_M))
  _write_json(metrics_path, metrics)
  log(f"sae: held-out FVU {ev['fvu']:.3f} ({ev['fvu_typical']:.3f} without the {ev['outsized_fraction']:.2%} outsized "
      f"tokens), L0 {ev['l0']:.1f}, dead {dead:.3f} (last {window} tokens), "
      f"loss recovered {lr['loss_recovered']:.3f}")
  return state.params, scale, metrics


def _codes(pc: PipelineConfig, d: str, resid: np.ndarray, sae, scale: float, fp: str, log) -> dict[str, np.ndarray]:
  """Every token's TopK code (latent ids, values); position 0 gets none (it was never trained on)."""
  meta = _read_json(os.path.join(d, "meta.json"))
  if meta and meta.get("fingerprint") == fp:
    return {k: np.load(os.path.join(d, f"{k}.npy"), mmap_mode="r") for k in ("idx", "val")}
  os.makedirs(d, exist_ok=True)
  N, S, _ = resid.shape
  k = pc.sae.k
  idx = np.zeros((N, S, k), np.int32)
  val = np.zeros((N, S, k), np.float16)
  step = max(1, 4096 // S)
  for s in range(0, N, step):
    x = np.asarray(resid[s:s + step, 1:], np.float32).reshape(-1, resid.shape[2]) * scale
    v, i = sae_lib.encode(sae, jnp.asarray(x), k)
    n = min(step, N - s)
    idx[s:s + n, 1:] = np.asarray(i).reshape(n, S - 1, k)
    val[s:s + n, 1:] = np.asarray(v).reshape(n, S - 1, k).astype(np.float16)
  np.save(os.path.join(d, "idx.npy"), idx)
  np.save(os.path.join(d, "val.npy"), val)
  _write_json(os.path.join(d, "meta.json"), {"fingerprint": fp})
  log(f"codes: {N * (S - 1)} tokens encoded")
  return {"idx": idx, "val": val}


def _export(m: LoadedModel, pc: PipelineConfig, out: str, tokens_NxS, heldout_N, codes, mlp, neurons, metrics, log):
  fp = _fp({"sae": metrics["fingerprint"], "export": dataclasses.asdict(pc.export), "max": pc.max_latents,
            "neurons": neurons.tolist(), "q": pc.neuron_quantile, "held": heldout_N.sum().item()})
  summary_path = os.path.join(out, "export.json")
  summary = _read_json(summary_path)
  if summary and summary.get("fingerprint") == fp:
    return summary
  token_strs = [m.tokenizer.token_str(t) for t in range(m.tokenizer.vocab_size)]
  lat_dir, neu_dir = os.path.join(out, "latents"), os.path.join(out, "neurons")
  for dd in (lat_dir, neu_dir):
    shutil.rmtree(dd, ignore_errors=True)
    os.makedirs(dd)
  alive = np.unique(np.asarray(codes["idx"])[:, 1:][np.asarray(codes["val"])[:, 1:] > 0]).tolist()
  chosen = set(alive)
  if pc.max_latents and len(alive) > pc.max_latents:
    chosen = set(np.random.default_rng(pc.seed).choice(alive, pc.max_latents, replace=False).tolist())
  latents, skipped = {}, []
  for j, act_NxS in export_lib.latent_activations(codes["idx"], codes["val"]):
    if j not in chosen:
      continue
    name = f"latent_{j:05d}"
    recs = export_lib.feature_records(name, act_NxS, tokens_NxS, token_strs, heldout_N, 0.0, pc.export, j)
    if recs is None:
      skipped.append(name)
      continue
    export_lib.write_feature(lat_dir, recs)
    latents[name] = {"id": j, "threshold": 0.0, "firing_rate": float(np.mean(act_NxS[:, 1:] > 0)),
                     "max": float(act_NxS.max())}
  neuron_info = {}
  for col, j in enumerate(neurons):
    act_NxS = np.asarray(mlp[:, :, col], np.float32)
    thr = float(np.quantile(act_NxS, pc.neuron_quantile))
    name = f"neuron_L{pc.mlp_layer}_{int(j):04d}"
    recs = export_lib.feature_records(name, act_NxS, tokens_NxS, token_strs, heldout_N, thr, pc.export, int(j))
    if recs is None:
      skipped.append(name)
      continue
    export_lib.write_feature(neu_dir, recs)
    neuron_info[name] = {"id": int(j), "threshold": thr, "max": float(act_NxS.max())}
  summary = {"fingerprint": fp, "alive_latents": len(alive), "latents": latents, "neurons": neuron_info,
             "skipped": skipped, "heldout_contexts": int(heldout_N.sum()), "contexts": int(len(tokens_NxS))}
  _write_json(summary_path, summary)
  log(f"export: {len(latents)} latents -> {lat_dir}, {len(neuron_info)} neurons -> {neu_dir} "
      f"({len(skipped)} skipped: too few activating contexts in a split)")
  return summary
