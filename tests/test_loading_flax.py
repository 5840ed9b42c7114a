"""Flax checkpoints (FlaxLlamaForCausalLM's layout, single file and sharded) load into the same params as safetensors
and give transformers' PyTorch logits."""

from __future__ import annotations

import glob
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from tokenlabel_jax import model as M
from tokenlabel_jax.config import ModelConfig
from tokenlabel_jax.errors import UserError
from tokenlabel_jax.loading import flax_dir, load_model

CFG = ModelConfig.tiny(head_dim=32)
TOKENS = np.random.default_rng(1).integers(0, CFG.vocab_size, (2, 24))
logits_fn = jax.jit(M.forward_tokens, static_argnames="cfg")


def flax_tree(torch_model) -> dict:
  """The parameter tree FlaxLlamaForCausalLM keeps for these weights: Dense kernels are [in, out] (torch weight.T),
  norms are `weight`, the embedding is `embedding`."""
  tree: dict = {}
  for name, p in torch_model.state_dict().items():
    w = p.detach().float().numpy()
    parts = name.split(".")
    if parts[-1] == "weight" and ("proj" in parts[-2] or parts[0] == "lm_head"):
      parts[-1], w = "kernel", w.T
    elif parts[-2] == "embed_tokens":
      parts[-1] = "embedding"
    node = tree
    for k in parts[:-1]:
      node = node.setdefault(k, {})
    node[parts[-1]] = np.ascontiguousarray(w)
  return tree


def write_flax_dir(path: str, hf_path: str, torch_model, shards: int = 1) -> None:
  """config.json + tokenizer from the safetensors directory, and the weights as Flax writes them."""
  from flax import serialization, traverse_util
  os.makedirs(path)
  for f in os.listdir(hf_path):
    if not f.endswith(".safetensors") and f != "model.safetensors.index.json":
      shutil.copy(os.path.join(hf_path, f), path)
  tree = flax_tree(torch_model)
  if shards == 1:
    with open(os.path.join(path, flax_dir.WEIGHTS), "wb") as f:
      f.write(serialization.to_bytes(tree))
    return
  flat = traverse_util.flatten_dict(tree, sep="/")
  keys = list(flat)
  weight_map = {}
  for s in range(shards):
    name = f"flax_model-{s + 1:05d}-of-{shards:05d}.msgpack"
    part = {k: flat[k] for k in keys[s::shards]}
    with open(os.path.join(path, name), "wb") as f:
      f.write(serialization.to_bytes(part))
    weight_map.update({k: name for k in part})
  with open(os.path.join(path, flax_dir.INDEX), "w") as f:
    json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
  root = tmp_path_factory.mktemp("flax")
  hf = str(root / "safetensors")
  torch_model = helpers.write_hf_llama(hf, CFG, seed=3)
  return root, hf, torch_model


@pytest.mark.parametrize("shards", [1, 3])
def test_flax_checkpoint_matches_safetensors_and_torch(tiny_llama, shards):
  root, hf, torch_model = tiny_llama
  path = str(root / f"flax{shards}")
  write_flax_dir(path, hf, torch_model, shards)
  assert not glob.glob(os.path.join(path, "*.safetensors"))
  assert len(glob.glob(os.path.join(path, "*.msgpack"))) == shards
  from_flax = load_model(path, use_cache=False, verbose=False)
  from_st = load_model(hf, use_cache=False, verbose=False)
  for (p, a), (_, b) in zip(jax.tree_util.tree_flatten_with_path(from_flax.params)[0],
                            jax.tree_util.tree_flatten_with_path(from_st.params)[0]):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str(p))
  ours = np.asarray(logits_fn(from_flax.params, from_flax.cfg, jnp.asarray(TOKENS))[0])
  st = np.asarray(logits_fn(from_st.params, from_st.cfg, jnp.asarray(TOKENS))[0])
  ref = helpers.torch_logits(torch_model, TOKENS)
  diff_st, diff_torch = float(np.abs(ours - st).max()), float(np.abs(ours - ref).max())
  print(f"flax ({shards} file(s)): max |logit diff| vs safetensors {diff_st:.1e}, vs transformers {diff_torch:.1e}")
  assert diff_st < 1e-4 and diff_torch < 1e-4


def test_flax_checkpoint_faults(tiny_llama, tmp_path):
  root, hf, torch_model = tiny_llama
  path = str(tmp_path / "f")
  write_flax_dir(path, hf, torch_model, shards=3)
  os.remove(os.path.join(path, "flax_model-00002-of-00003.msgpack"))
  with pytest.raises(UserError, match="lacks flax_model-00002-of-00003.msgpack"):
    load_model(path, use_cache=False, verbose=False)
  path = str(tmp_path / "g")
  write_flax_dir(path, hf, torch_model, shards=1)
  with open(os.path.join(path, flax_dir.WEIGHTS), "r+b") as f:
    f.write(np.random.default_rng(0).bytes(64))
  with pytest.raises(UserError, match="not a readable Flax msgpack"):
    load_model(path, use_cache=False, verbose=False)
