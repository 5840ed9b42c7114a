"""Benchmark: the JAX label step against a PyTorch/transformers step doing the same work, on the 135M model.

    .venv/bin/python scripts/bench.py [--quick]

Each measurement runs in its own process (torch and JAX fight over the cores in one), reports the median of repeated
steps after warm-up, and the parent writes experiments/results/bench.{json,md}. The step is the paper's: a soft label
(p = softmax(v)) spliced into a judge prompt after a prefix, the answer logits read at the last position, the loss
back-propagated to v only (the model frozen). "cached": the prefix's KV cache is computed once and only the label
slot and suffix run per step; "full": the whole prompt runs every step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "experiments", "results")
PREFIX, SUFFIX = 48, 16  # tokens before the label slot, and the slot plus the tokens after it
YES, NO = 33, 32


def _time(fn, repeats: int, warmup: int = 2) -> float:
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def step_flops(cfg, B: int, cached: bool) -> float:
  """Forward FLOPs of the positions that run per step, times 2 for the backward (activation grads only: the frozen
  weights get no gradient, so each linear layer's backward costs one forward's matmul, not two)."""
  S = SUFFIX if cached else PREFIX + SUFFIX
  T = PREFIX + SUFFIX
  D, F, L, E = cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.head_dim
  per_token = 2 * (D * cfg.n_heads * E * 2 + D * cfg.n_kv_heads * E * 2 + 3 * D * F)
  attn = 2 * 2 * cfg.n_heads * E * S * T  # QK^T and PV, per sequence (upper bound: full T)
  fwd = B * L * (per_token * S + attn)  # the judge's score is two logits: no vocabulary-wide head is needed
  return 2.0 * fwd


def jax_worker(B: int, cached: bool, F: int, vmapped: bool, repeats: int, dtype: str, remat: bool = False,
               disc_name: str = "judge", model: str | None = None) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np
  from tokenlabel_jax import discriminators as disc_lib, model as model_lib, optimization as opt_lib
  from tokenlabel_jax.loading import load_model
  m = load_model(model, dtype=dtype, verbose=False)
  cfg, params = dataclasses.replace(m.cfg, remat=remat), m.params
  rng = np.random.default_rng(0)
  disc = disc_lib.get(disc_name)
  lcfg = opt_lib.LabelConfig(seeds=1, batch_size=B, vocab_filter="all")
  mask = jnp.ones(cfg.vocab_size, bool)

  def prepared(seed):
    r = np.random.default_rng(seed)
    pre = jnp.asarray(r.integers(100, 40000, (B, PREFIX if cached else 1)), jnp.int32)
    n_suf = SUFFIX - 1 + (0 if cached else PREFIX - 1)
    suf = jnp.asarray(r.integers(100, 40000, (B, n_suf)), jnp.int32)
    t0 = time.perf_counter()
    logits, cache = jax.jit(model_lib.forward_tokens, static_argnums=1)(params, cfg, pre)
    jax.block_until_ready(cache)
    build = time.perf_counter() - t0
    # "full": a one-token prefix, so the label slot and everything after run each step (the label's position moves
    # to 1; the work per step is the whole prompt either way).
    last = n_suf
    no_head = model_lib.KVCache(cache.k_LxBxTxKxE[:, :1, :0], cache.v_LxBxTxKxE[:, :1, :0], cache.valid_BxT[:1, :0])
    prep = disc_lib.Prepared(
        shared=no_head, cache=cache, prefix_len_B=jnp.full((B,), pre.shape[1], jnp.int32),
        logq_BxV=jax.nn.log_softmax(logits[:, -1]), suffix_ids_BxS=suf, suffix_valid_BxS=jnp.ones(suf.shape, bool),
        readout_pos_BxR=jnp.full((B, 2), last, jnp.int32), readout_tok_BxR=jnp.tile(jnp.asarray([[YES, NO]]), (B, 1)),
        readout_w_BxR=jnp.tile(jnp.asarray([[1.0, -1.0]]), (B, 1)), baseline_B=jnp.zeros((B,)))
    return prep, build

  preps, builds = zip(*[prepared(f) for f in range(F)])
  targets = jnp.asarray(rng.integers(0, 2, (F, B)), jnp.float32)
  out = {"framework": "jax", "model": m.cfg.name, "disc": disc_name, "B": B, "cached": cached, "F": F,
         "vmapped": vmapped, "dtype": dtype,
         "head": "read",
         "remat": remat,
         "prefix_build_s": statistics.median(builds),
         "prefix_cache_mb_per_example": _cache_bytes(preps[0].cache) / B / 1e6}
  if vmapped or F == 1:
    prep = disc_lib.stack(preps)
    st = opt_lib.init_state(lcfg, cfg.vocab_size, F)
    state = {"label": st.label, "opt": st.opt_state}
    lq = prep.logq_BxV.mean(1)

    def run():
      state["label"], state["opt"], parts = opt_lib.train_step(cfg, disc, lcfg, state["label"], state["opt"],
                                                               jnp.asarray(0), params, prep, targets, lq, mask)
      jax.block_until_ready(parts["loss"])
  else:
    singles = []
    for f in range(F):
      prep = disc_lib.stack([preps[f]])
      st = opt_lib.init_state(lcfg, cfg.vocab_size, 1)
      singles.append({"label": st.label, "opt": st.opt_state, "prep": prep, "lq": prep.logq_BxV.mean(1),
                      "t": targets[f:f + 1]})

    def run():
      for s in singles:
        s["label"], s["opt"], parts = opt_lib.train_step(cfg, disc, lcfg, s["label"], s["opt"], jnp.asarray(0),
                                                         params, s["prep"], s["t"], s["lq"], mask)
        jax.block_until_ready(parts["loss"])
  out["step_s"] = _time(run, repeats)
  out["gflop_per_s"] = F * step_flops(cfg, B, cached) / out["step_s"] / 1e9
  out["peak_rss_gb"] = _peak_rss_gb()
  return out


def _cache_bytes(cache) -> int:
  return cache.k_LxBxTxKxE.nbytes + cache.v_LxBxTxKxE.nbytes


def _peak_rss_gb() -> float:
  """This process's own peak resident memory (ru_maxrss is in KB on Linux)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def torch_worker(B: int, cached: bool, repeats: int, dtype: str, head: str) -> dict:
  """head="read": logits only at the read position (logits_to_keep=1, our tuned reference); "all": transformers'
  default of logits at every position, as a plain `model(inputs_embeds=..., past_key_values=...)` call computes."""
  import copy
  import torch
  from transformers import AutoModelForCausalLM
  from tokenlabel_jax.loading import embedded
  torch.manual_seed(0)
  path = embedded.gguf_path(embedded.SMALL)
  model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path),
                                               dtype=getattr(torch, dtype))
  model.eval().requires_grad_(False)
  V = model.config.vocab_size
  emb = model.get_input_embeddings().weight
  g = torch.Generator().manual_seed(0)
  pre = torch.randint(100, 40000, (B, PREFIX), generator=g)
  suf = torch.randint(100, 40000, (B, SUFFIX - 1), generator=g)
  target = torch.randint(0, 2, (B,), generator=g).float()
  v = torch.randn(1, V, requires_grad=True)
  keep = 1 if head == "read" else 0
  opt = torch.optim.AdamW([v], lr=0.1, weight_decay=0.01)
  t0 = time.perf_counter()
  with torch.no_grad():
    prefix_cache = model(pre, use_cache=True).past_key_values
  build = time.perf_counter() - t0

  def run():
    p = torch.softmax(v, -1)
    slot = (p.to(emb.dtype) @ emb).expand(B, 1, -1)
    if cached:
      x = torch.cat([slot, emb[suf]], 1)
      cache = copy.deepcopy(prefix_cache)  # the step must not grow the shared prefix cache
      logits = model(inputs_embeds=x, past_key_values=cache, use_cache=True, logits_to_keep=keep).logits[:, -1]
    else:
      x = torch.cat([emb[pre], slot, emb[suf]], 1)
      logits = model(inputs_embeds=x, use_cache=False, logits_to_keep=keep).logits[:, -1]
    logits = logits.float()
    score = logits[:, YES] - logits[:, NO]
    loss = torch.nn.functional.binary_cross_entropy_with_logits(score, target)
    opt.zero_grad()
    loss.backward()
    opt.step()

  from tokenlabel_jax.config import ModelConfig
  cfg = ModelConfig.smollm2_135m()
  step = _time(run, repeats)
  return {"framework": "torch", "B": B, "cached": cached, "F": 1, "vmapped": False, "dtype": dtype, "head": head,
          "prefix_build_s": build, "step_s": step, "gflop_per_s": step_flops(cfg, B, cached) / step / 1e9,
          "torch": torch.__version__, "peak_rss_gb": _peak_rss_gb()}


def matmul_worker(repeats: int) -> dict:
  import jax
  import jax.numpy as jnp
  n = 2048
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
  f = jax.jit(lambda x, y: x @ y)
  s = _time(lambda: jax.block_until_ready(f(a, b)), repeats)
  return {"framework": "jax", "matmul_n": n, "step_s": s, "gflop_per_s": 2 * n**3 / s / 1e9}


def run_worker(args: list[str]) -> dict:
  proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False, cwd=ROOT)
  if proc.returncode:
    raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-3000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


def end_to_end(quick: bool, features_path: str, only: list[str] | None = None, per_batch: int = 4) -> dict:
  """A real labeling run on the 135M model (its default discriminator and step count): features per hour, and
  the peak resident memory of that process alone (os.wait4 returns the rusage of one child)."""
  out_dir = os.path.join("/tmp", f"tokenlabel_bench_{os.getpid()}_{os.path.basename(features_path)}_{per_batch}")
  cmd = [sys.executable, "-m", "tokenlabel_jax.label", f"--features={ROOT}/{features_path}",
         f"--output_dir={out_dir}", f"--features_per_batch={per_batch}", "--resume=false",
         "--model=smollm2-135m-instruct"]
  if only:
    cmd.append(f"--only={','.join(only)}")
  if quick:
    cmd.append("--steps=60")
  t = time.perf_counter()
  with open(out_dir + ".log", "w") as log:
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
  wall = time.perf_counter() - t
  if os.waitstatus_to_exitcode(status):
    raise RuntimeError(f"labeling run failed; see {log.name}")
  with open(os.path.join(out_dir, "summary.json")) as f:
    summary = json.load(f)
  with open(os.path.join(out_dir, next(iter(summary)), "result.json")) as f:
    steps = json.load(f)["steps"]  # what the launcher ran: --steps=60, or its default (0: the namer's exact scan)
  return {"features_path": features_path, "features": len(summary), "per_batch": per_batch, "steps": steps,
          "wall_s": wall, "features_per_hour": len(summary) * 3600 / wall, "peak_rss_gb": usage.ru_maxrss / 1024**2,
          "labels": _labels(summary)}


def _labels(summary: dict) -> dict:
  return {name: {"label": r["label"], "heldout_auc": r["heldout"]["auc"]} for name, r in summary.items()}


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--worker", default=None)
  ap.add_argument("--B", type=int, default=8)
  ap.add_argument("--F", type=int, default=1)
  ap.add_argument("--cached", type=int, default=1)
  ap.add_argument("--vmapped", type=int, default=1)
  ap.add_argument("--dtype", default="float32")
  ap.add_argument("--head", default="read", help="torch: logits at the read position only, or at 'all' positions")
  ap.add_argument("--remat", type=int, default=0, help="jax: rematerialized layers")
  ap.add_argument("--disc", default="judge", help="jax: the discriminator whose step is timed")
  ap.add_argument("--model", default="smollm2-135m-instruct", help="jax worker: a model as --model takes it, "
                  "e.g. `--worker=jax --model=qwen2.5-coder-1.5b --repeats=2` times one judge step of that model")
  ap.add_argument("--repeats", type=int, default=7)
  ap.add_argument("--quick", action="store_true")
  ap.add_argument("--report", action="store_true", help="only rebuild bench.md from bench.json")
  args = ap.parse_args()
  if args.report:
    with open(os.path.join(RESULTS, "bench.json")) as f:
      write_markdown(json.load(f))
    return
  if args.worker == "jax":
    print(json.dumps(jax_worker(args.B, bool(args.cached), args.F, bool(args.vmapped), args.repeats, args.dtype,
                                bool(args.remat), args.disc, args.model)))
    return
  if args.worker == "torch":
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    print(json.dumps(torch_worker(args.B, bool(args.cached), args.repeats, args.dtype, args.head)))
    return
  if args.worker == "matmul":
    print(json.dumps(matmul_worker(args.repeats)))
    return
  r = f"--repeats={3 if args.quick else 7}"
  plan = [["--worker=matmul"]]
  for B in ([8] if args.quick else [8, 32]):
    for cached in (1, 0):
      plan.append(["--worker=jax", f"--B={B}", f"--cached={cached}"])
      plan.append(["--worker=torch", f"--B={B}", f"--cached={cached}"])
    plan.append(["--worker=torch", f"--B={B}", "--cached=1", "--head=all"])
    if not args.quick:  # the same comparison in bfloat16; and what rematerialized layers cost
      plan.append(["--worker=jax", f"--B={B}", "--cached=1", "--dtype=bfloat16"])
      plan.append(["--worker=torch", f"--B={B}", "--cached=1", "--dtype=bfloat16"])
      plan.append(["--worker=jax", f"--B={B}", "--cached=1", "--remat=1"])
  for F in ([4] if args.quick else [4, 16]):
    for vm in (1, 0):
      plan.append(["--worker=jax", "--B=8", f"--F={F}", f"--vmapped={vm}"])
  for vm in (1, 0):  # the 135M model's default discriminator: no model pass in its step (B = its default 32)
    plan.append(["--worker=jax", "--B=32", f"--F={4 if args.quick else 16}", f"--vmapped={vm}", "--disc=namer"])
  cmd = "python scripts/bench.py" + (" --quick" if args.quick else "")
  data = {"command": cmd, "date": time.strftime("%Y-%m-%d"), "host": _host(), "rows": [], "end_to_end": None}
  os.makedirs(RESULTS, exist_ok=True)
  for i, worker in enumerate(plan):
    print(f"[{i + 1}/{len(plan) + 1}] {' '.join(worker)}", file=sys.stderr, flush=True)
    data["rows"].append(run_worker([*worker, r]))
    _save(data)  # partial results survive an interrupted benchmark
  runs = [("experiments/data", ["animal", "mammal", "number", "chinese"], 4)]  # the README's features
  if not args.quick:  # many features: the compile and load costs of the first batch are spread over 26
    runs += [("experiments/data/concepts", None, 4), ("experiments/data", ["animal", "mammal", "number", "chinese"], 1)]
  data["end_to_end"] = []
  for path, only, per_batch in runs:
    print(f"[end to end] {path} {only or 'all'}, batches of {per_batch}", file=sys.stderr, flush=True)
    data["end_to_end"].append(end_to_end(args.quick, path, only, per_batch))
    _save(data)
  write_markdown(data)


def _host() -> str:
  """The CPU and the SIMD extensions its kernels can use: results move with them (PyTorch's bfloat16 most of all)."""
  model, flags = "unknown CPU", set()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
          model = value.strip()
        elif key.strip() == "flags":
          flags = set(value.split())
  except OSError:
    pass
  simd = sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
  import importlib.metadata as md
  versions = ", ".join(f"{p} {md.version(p)}" for p in ("jax", "torch", "transformers"))
  return f"{model}, {os.cpu_count()} cores, SIMD: {' '.join(simd) or 'none reported'}; {versions}"


def _save(data: dict) -> None:
  with open(os.path.join(RESULTS, "bench.json"), "w") as f:
    json.dump(data, f, indent=1)


def write_markdown(data: dict) -> None:
  """experiments/results/bench.md from the measurements (`--report` rebuilds it from bench.json alone)."""
  rows, e2e, cmd = data["rows"], data["end_to_end"], data["command"]
  peak = rows[0]["gflop_per_s"]
  steps = rows[1:]
  lines = [f"# Benchmark: label step, JAX vs PyTorch (SmolLM2-135M, {os.cpu_count()} CPU cores)",
           "", f"Made by `{cmd}` on {data['date']}; medians of repeated steps after warm-up, each configuration in its "
           f"own process. Prompt: {PREFIX} prefix tokens + {SUFFIX} (slot + suffix), the judge's 1/0 readout. "
           "head: 'read' computes what the score needs (JAX: the two answer logits; torch: logits_to_keep=1); 'all' is "
           "transformers' default of logits at every position. FLOPs count the model's positions that run per step, "
           "forward + activation-gradient backward.", "", f"Host: {data.get('host', 'not recorded')}.", "",
           "| framework | discriminator | dtype | head | remat | B | cached | F | vmapped | step s | "
           "s per feature-step | "
           "GFLOP/s | of matmul rate | prefix build s | prefix cache MB/example | worker peak RSS GB |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for row in steps:
    cache_mb = row.get("prefix_cache_mb_per_example")
    namer = row.get("disc") == "namer"  # its step runs no model pass: FLOPs and the matmul fraction do not apply
    rate = " | " if namer else f"{row['gflop_per_s']:.1f} | {row['gflop_per_s'] / peak:.2f}"
    lines.append(f"| {row['framework']} | {row.get('disc', 'judge')} | {row.get('dtype', 'float32')} | "
                 f"{row.get('head', 'read')} | "
                 f"{row.get('remat', False)} | {row['B']} | "
                 f"{row['cached']} | {row['F']} | {row['vmapped']} | {row['step_s']:.4f} | "
                 f"{row['step_s'] / row['F']:.4f} | {rate} | "
                 f"{row['prefix_build_s']:.3f} | {'' if cache_mb is None else f'{cache_mb:.2f}'} | "
                 f"{row.get('peak_rss_gb', float('nan')):.2f} |")
  lines += ["", f"Matmul reference: {rows[0]['matmul_n']}^2 float32 in JAX, {peak:.1f} GFLOP/s.", ""]

  def find(**kw):
    return next((x for x in steps if all(x.get(k, d) == v for k, (v, d) in kw.items())), None)

  for B in sorted({r["B"] for r in steps if r["framework"] == "torch"}):
    for cached, dtype, head in ((True, "float32", "read"), (True, "float32", "all"), (False, "float32", "read"),
                                (True, "bfloat16", "read")):
      j = find(framework=("jax", None), B=(B, None), cached=(cached, None), F=(1, None), dtype=(dtype, "float32"),
               remat=(False, False))
      t = find(framework=("torch", None), B=(B, None), cached=(cached, None), dtype=(dtype, "float32"),
               head=(head, "read"))
      if j and t:
        # At equal work no step can beat the matmul rate, so the ratio cannot fall below torch's fraction of it.
        lines.append(f"- B={B}, {'cached' if cached else 'full prompt'}, {dtype}, torch head '{head}': "
                     f"JAX step / PyTorch step = {j['step_s'] / t['step_s']:.2f} (floor at equal work: "
                     f"{t['gflop_per_s'] / peak:.2f})")
    r = find(framework=("jax", None), B=(B, None), cached=(True, None), remat=(True, False))
    j = find(framework=("jax", None), B=(B, None), cached=(True, None), F=(1, None), dtype=("float32", "float32"),
             remat=(False, False))
    if r and j:
      lines.append(f"- B={B}, cached, rematerialized layers: {r['step_s'] / j['step_s']:.2f}x the step time")
  for disc, F in sorted({(r.get("disc", "judge"), r["F"]) for r in steps if r["F"] > 1}):
    v = find(F=(F, None), vmapped=(True, None), remat=(False, False), disc=(disc, "judge"))
    s = find(F=(F, None), vmapped=(False, None), disc=(disc, "judge"))
    if v and s:
      how = "one step over the features (lax.map inside)" if disc == "namer" else "vmapped"
      lines.append(f"- {disc}, B={v['B']}, F={F}: {how} is {s['step_s'] / v['step_s']:.2f}x faster per feature than "
                   "one feature per step")
  for e2e in ([e2e] if isinstance(e2e, dict) else e2e or []):  # one run in older result files, a list now
    labels = ", ".join(f"{k} '{v['label']}' {v['heldout_auc']:.3f}" for k, v in e2e.get("labels", {}).items())
    if len(e2e.get("labels", {})) > 8:
      good = sum(v["heldout_auc"] >= 0.9 for v in e2e["labels"].values())
      labels = f"{good} of {len(e2e['labels'])} at held-out AUC >= 0.9"
    lines.append(f"- End to end (`python -m tokenlabel_jax.label`, default discriminator, {e2e['features']} features "
                 f"of {e2e.get('features_path', 'experiments/data')}, {e2e['steps']} steps, batches of "
                 f"{e2e.get('per_batch', 4)}): {e2e['wall_s']:.0f} s, {e2e['features_per_hour']:.0f} "
                 f"features/hour, peak resident memory of the labeling process {e2e['peak_rss_gb']:.2f} GB"
                 + (f"; labels (held-out AUC): {labels}" if labels else ""))
  md = "\n".join(lines) + "\n"
  with open(os.path.join(RESULTS, "bench.md"), "w") as f:
    f.write(md)
  print(md)


if __name__ == "__main__":
  main()
