"""Devices: a mesh with a feature axis (data parallel over features) and a model axis (tensor parallel Llama).

Labeling is embarrassingly parallel over features: each device holds a slice of the features' examples, prefix
caches and label parameters, and a replica of the frozen model where it fits. For models that do not fit one device
(Llama-3-70B), the model axis shards the weights Megatron-style: column-parallel q/k/v/gate/up, row-parallel o/down,
and the vocabulary dimension of the embeddings.
"""

from __future__ import annotations

from typing import Any

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
    "bq_LxHE": P(None, MODEL),
    "bk_LxKE": P(None, MODEL),
    "bv_LxKE": P(None, MODEL),
    "wo_LxHExD": P(None, MODEL, None),
    "w_gate_LxDxF": P(None, None, MODEL),
    "w_up_LxDxF": P(None, None, MODEL),
    "w_down_LxFxD": P(None, MODEL, None),
}


def init_distributed(coordinator_address: str | None, num_processes: int | None, process_id: int | None) -> None:
  """Multi-host jobs (TPU pods, several GPU hosts): call once per process before anything touches a device.

  All three flags together start jax.distributed; none of them is a single-process job. Anything in between is an
  error: a process that silently runs alone would label every feature again and write over the others' files.
  On CPUs, processes exchange arrays through JAX's gloo collectives (jax_cpu_collectives_implementation).
  """
  given = {"--coordinator_address": coordinator_address, "--num_processes": num_processes,
           "--process_id": process_id}
  if all(v is None for v in given.values()):
    return
  missing = [k for k, v in given.items() if v is None]
  if missing:
    raise UserError(f"a multi-host job needs {', '.join(missing)} as well "
                    f"(given: {', '.join(k for k, v in given.items() if v is not None)})",
                    "pass --coordinator_address=HOST:PORT, --num_processes=N and --process_id=I on every process, "
                    "or none of them for a single-process job")
  if num_processes < 1 or not 0 <= process_id < num_processes:
    raise UserError(f"--process_id={process_id} is not in 0..{num_processes - 1} (--num_processes={num_processes})",
                    "number the processes 0, 1, ..., N-1")
  if num_processes == 1:
    return
  jax.distributed.initialize(coordinator_address, num_processes, process_id)


def make_mesh(model_parallel: int = 1, devices=None) -> Mesh:
  devices = list(devices if devices is not None else jax.devices())
  if model_parallel < 1 or len(devices) % model_parallel:
    raise UserError(f"--model_parallel={model_parallel} does not divide the {len(devices)} devices",
                    "choose a divisor of the device count")
  grid = np.array(devices).reshape(len(devices) // model_parallel, model_parallel)
  return Mesh(grid, (FEATURES, MODEL))


def check_model_parallel(params: dict[str, Any], n: int) -> None:
  """Every dimension PARAM_RULES shards must split evenly over the n model shards."""
  if n == 1:
    return
  for path, x in jax.tree_util.tree_leaves_with_path(params):
    name = path[-1].key
    for dim, axis in zip(np.shape(x), PARAM_RULES.get(name, P())):
      if axis == MODEL and dim % n:
        raise UserError(f"--model_parallel={n} does not divide the model's {name} (a dimension of {dim})",
                        "choose a --model_parallel that divides the head, MLP and vocabulary sizes (e.g. 2, 4, 8)")


def place_params(mesh: Mesh, params: dict[str, Any]) -> dict[str, Any]:
  """Replicated across the feature axis; sharded by PARAM_RULES across the model axis (a no-op when it has size 1)."""
  n = mesh.shape[MODEL]
  check_model_parallel(params, n)

  def put(path, x):
    spec = PARAM_RULES.get(path[-1].key, P()) if n > 1 else P()
    return _put_global(x, NamedSharding(mesh, spec))
  return jax.tree_util.tree_map_with_path(put, params)


class FeaturePlacer:
  """Where arrays with a leading feature axis go: split along the mesh's feature axis, any number of features.

  The feature axis is padded to a multiple of the feature shards by repeating the last feature (features never
  interact: the step is vmapped or mapped over them, so a padded copy changes no real feature's numbers), and every
  such array lives on the same devices as the model, so one feature on 8 devices, 5 on 3, or the last partial group
  all run the same jitted step. Scalars (the optimizer's step count) are replicated. Calling it on arrays it already
  placed is a no-op.
  """

  def __init__(self, mesh: Mesh):
    self.mesh = mesh
    self.shards = mesh.shape[FEATURES]
    self._take = jax.jit(lambda t, f: jax.tree.map(lambda x: jax.lax.dynamic_index_in_dim(x, f, keepdims=False), t),
                         out_shardings=NamedSharding(mesh, P()))

  def padded(self, n_features: int) -> int:
    return -(-n_features // self.shards) * self.shards

  def __call__(self, tree):
    return jax.tree.map(self._put, tree)

  def _put(self, x):
    if np.ndim(x) == 0:
      return _put_global(x, NamedSharding(self.mesh, P()))
    n = x.shape[0]
    if n % self.shards:
      pad = np.repeat(np.asarray(x[-1:]), self.padded(n) - n, axis=0)
      x = np.concatenate([np.asarray(x), pad], axis=0)
    return _put_global(x, NamedSharding(self.mesh, P(FEATURES)))

  def replicate(self, tree):
    """Arrays without a feature axis (the vocabulary mask, the step number), on every device of the mesh."""
    return jax.tree.map(lambda x: _put_global(x, NamedSharding(self.mesh, P())), tree)

  def take(self, tree, f: int):
    """Feature f of placed arrays, replicated on the mesh (the devices the model is on)."""
    return self._take(tree, _put_global(np.int32(f), NamedSharding(self.mesh, P())))

  def to_host(self, tree, n_features: int):
    """The first n_features of placed arrays as numpy (gathered from every process in a multi-host job)."""
    return jax.tree.map(lambda x: host_array(x)[:n_features] if np.ndim(x) else host_array(x), tree)


def host_array(x) -> np.ndarray:
  """A whole array in this process's memory, also when its shards live on other hosts."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


def _put_global(x, sharding: NamedSharding) -> jax.Array:
  """device_put, also onto a mesh that spans several processes (each process passes the same whole array)."""
  if isinstance(x, jax.Array) and x.sharding == sharding:
    return x
  if jax.process_count() == 1:
    return jax.device_put(x, sharding)
  x = host_array(x)
  return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def mesh_of(params) -> Mesh:
  """The mesh the model's parameters live on; a one-device mesh when they are not on a mesh."""
  leaf = jax.tree.leaves(params)[0]
  sharding = getattr(leaf, "sharding", None)
  if isinstance(sharding, NamedSharding):
    return sharding.mesh
  device = next(iter(sharding.device_set)) if sharding is not None else jax.devices()[0]
  return Mesh(np.array([[device]]), (FEATURES, MODEL))
