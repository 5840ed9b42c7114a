"""Devices: a mesh with a feature axis (data parallel over features) and a model axis (tensor parallel Llama).

Labeling is embarrassingly parallel over features: each device holds a slice of the features' examples, prefix
caches and label parameters, and a replica of the frozen model where it fits. For models that do not fit one device
(Llama-3-70B), the model axis shards the weights Megatron-style: column-parallel q/k/v/gate/up, row-parallel o/down,
and the vocabulary dimension of the embeddings.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from tokenlabel_jax.errors import UserError

FEATURES, MODEL = "features", "model"

# Parameter name -> partition spec on the model axis (layers are stacked on a leading L axis).
PARAM_RULES = {
    "embed_VxD": P(MODEL, None),
    "lm_head_DxV": P(None, MODEL),
    "final_norm_D": P(),
    "attn_norm_LxD": P(),
    "mlp_norm_LxD": P(),
    "wq_LxDxHE": P(None, None, MODEL),
    "wk_LxDxKE": P(None, None, MODEL),
    "wv_LxDxKE": P(None, None, MODEL),
    "wo_LxHExD": P(None, MODEL, None),
    "w_gate_LxDxF": P(None, None, MODEL),
    "w_up_LxDxF": P(None, None, MODEL),
    "w_down_LxFxD": P(None, MODEL, None),
}


def init_distributed(coordinator_address: str | None, num_processes: int | None, process_id: int | None) -> None:
  """Multi-host jobs (TPU pods, several GPU hosts): call once per process before anything touches a device."""
  if coordinator_address:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)


def make_mesh(model_parallel: int = 1, devices=None) -> Mesh:
  devices = list(devices if devices is not None else jax.devices())
  if model_parallel < 1 or len(devices) % model_parallel:
    raise UserError(f"--model_parallel={model_parallel} does not divide the {len(devices)} devices",
                    "choose a divisor of the device count")
  grid = np.array(devices).reshape(len(devices) // model_parallel, model_parallel)
  return Mesh(grid, (FEATURES, MODEL))


def place_params(mesh: Mesh, params: dict[str, Any]) -> dict[str, Any]:
  """Replicated across the feature axis; sharded by PARAM_RULES across the model axis (a no-op when it has size 1)."""
  def put(path, x):
    name = path[-1].key
    spec = PARAM_RULES.get(name, P()) if mesh.shape[MODEL] > 1 else P()
    return jax.device_put(x, NamedSharding(mesh, spec))
  return jax.tree_util.tree_map_with_path(put, params)


def feature_placer(mesh: Mesh, n_features: int) -> Callable[[Any], Any] | None:
  """Puts arrays with a leading feature axis on the mesh, split along it; None when F does not divide evenly."""
  shards = mesh.shape[FEATURES]
  if shards == 1 or n_features % shards:
    return None

  def place(tree):  # scalars (the optimizer's step count) are replicated
    return jax.tree.map(lambda x: jax.device_put(x, NamedSharding(mesh, P(FEATURES) if np.ndim(x) else P())), tree)
  return place
