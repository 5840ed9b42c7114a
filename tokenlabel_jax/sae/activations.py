"""The residual stream entering a layer and the MLP neurons of a layer, over every context, cached float16 on disk.

Arrays are .npy memory maps written batch by batch; `progress.json` records how many contexts are done and is
written only after the data it counts is flushed, so a killed run resumes where it stopped and never trusts a
half-written batch.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from tokenlabel_jax import model as model_lib
from tokenlabel_jax.config import ModelConfig
from tokenlabel_jax.errors import UserError


@functools.partial(jax.jit, static_argnames=("cfg", "layer", "mlp_layer"))
def layer_activations(params, cfg: ModelConfig, tokens_BxS: jax.Array, layer: int, mlp_layer: int,
                      neurons_N: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(residual stream entering `layer`, B x S x D; chosen MLP neurons of `mlp_layer`, B x S x N), float32."""
  B, S = tokens_BxS.shape
  positions_BxS = jnp.broadcast_to(jnp.arange(S), (B, S))
  top = max(layer, mlp_layer)
  _, _, resid_LxBxSxD = model_lib.forward(params, cfg, model_lib.embed(params, tokens_BxS), positions_BxS,
                                          return_layers=True, layers=(0, top + 1))
  _, _, mlp_1xBxSxF = model_lib.forward(params, cfg, resid_LxBxSxD[mlp_layer], positions_BxS, return_layers="mlp",
                                        layers=(mlp_layer, mlp_layer + 1))
  return resid_LxBxSxD[layer].astype(jnp.float32), mlp_1xBxSxF[0][..., neurons_N].astype(jnp.float32)


def _open(path: str, shape: tuple[int, ...], fresh: bool) -> np.memmap:
  if fresh:
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=shape)
  try:
    arr = np.load(path, mmap_mode="r+")
  except (OSError, ValueError) as e:
    raise UserError(f"{path} is unreadable ({e})", f"delete {os.path.dirname(path)} to recompute the activations"
                    ) from None
  if arr.shape != shape or arr.dtype != np.float16:
    raise UserError(f"{path} holds {arr.dtype}{list(arr.shape)}, not float16{list(shape)}",
                    f"delete {os.path.dirname(path)} to recompute the activations")
  return arr


def cache_activations(params, cfg: ModelConfig, tokens_NxS: np.ndarray, out_dir: str, *, layer: int, mlp_layer: int,
                      neurons: np.ndarray, batch_size: int, fingerprint: dict[str, Any],
                      log: Callable[[str], None] | None = None, stop_after: int | None = None) -> dict[str, np.ndarray]:
  """Fills out_dir/{resid,mlp}.npy (float16, N x S x D and N x S x len(neurons)); resumes a killed run.

  `stop_after` (batches) simulates a kill, for tests. Returns the arrays as read-only memory maps.
  """
  log = log or (lambda s: print(s, file=sys.stderr, flush=True))
  for name, value, top in (("layer", layer, cfg.n_layers - 1), ("mlp_layer", mlp_layer, cfg.n_layers - 1)):
    if not 0 <= value <= top:
      raise UserError(f"--{name}={value} is outside the model's layers 0..{top}", f"choose a layer in 0..{top}")
  N, S = tokens_NxS.shape
  os.makedirs(out_dir, exist_ok=True)
  progress_path = os.path.join(out_dir, "progress.json")
  fingerprint = json.loads(json.dumps({**fingerprint, "layer": layer, "mlp_layer": mlp_layer, "shape": [N, S],
                                       "neurons": np.asarray(neurons).tolist()}))
  done = 0
  if os.path.exists(progress_path):
    try:
      with open(progress_path) as f:
        progress = json.load(f)
    except (OSError, ValueError):
      progress = {}
    if progress.get("fingerprint") == fingerprint:
      done = int(progress["done"])
    else:
      log(f"activations: {out_dir} was made with other settings; recomputing")
  fresh = done == 0
  resid = _open(os.path.join(out_dir, "resid.npy"), (N, S, cfg.dim), fresh)
  mlp = _open(os.path.join(out_dir, "mlp.npy"), (N, S, len(neurons)), fresh)
  neurons_j = jnp.asarray(neurons, jnp.int32)
  t0, start, batches, last_log = time.time(), done, 0, 0.0
  while done < N:
    if stop_after is not None and batches >= stop_after:
      break
    stop = min(N, done + batch_size)
    chunk = tokens_NxS[done:stop]
    pad = batch_size - len(chunk)  # one compiled shape: the last batch is padded
    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)]) if pad else chunk
    r, m = layer_activations(params, cfg, jnp.asarray(chunk), layer, mlp_layer, neurons_j)
    resid[done:stop] = np.asarray(r)[:stop - done].astype(np.float16)
    mlp[done:stop] = np.asarray(m)[:stop - done].astype(np.float16)
    resid.flush()
    mlp.flush()
    done, batches = stop, batches + 1
    with open(progress_path + ".tmp", "w") as f:
      json.dump({"done": done, "fingerprint": fingerprint}, f)
    os.replace(progress_path + ".tmp", progress_path)
    if done < N and time.time() - last_log < 15:
      continue
    last_log = time.time()
    rate = (done - start) * S / max(time.time() - t0, 1e-9)
    log(f"activations: {done}/{N} contexts ({100 * done / N:.0f}%), {rate:.0f} tokens/s, "
        f"eta {(N - done) * S / max(rate, 1e-9) / 60:.1f} min")
  del resid, mlp
  return {"resid": np.load(os.path.join(out_dir, "resid.npy"), mmap_mode="r"),
          "mlp": np.load(os.path.join(out_dir, "mlp.npy"), mmap_mode="r"), "done": done}


def is_complete(out_dir: str, n_contexts: int) -> bool:
  try:
    with open(os.path.join(out_dir, "progress.json")) as f:
      return int(json.load(f)["done"]) >= n_contexts
  except (OSError, ValueError, KeyError):
    return False
