"""Labels a few tiny-model features on N simulated CPU devices and prints every result as JSON (see test_sharding.py).

  python tests/device_matrix.py --devices=3 --model_parallel=1 --features=1,3 --discriminators=judge,namer

Sets XLA_FLAGS itself, before jax is imported (the device count is fixed at import). Every feature is different
data, so a mix-up between features (or with the padding) changes a label.
"""

import argparse
import json
import os
import sys
import tempfile

if __name__ == "__main__":
  p = argparse.ArgumentParser()
  p.add_argument("--devices", type=int, required=True)
  p.add_argument("--model_parallel", type=int, default=1)
  p.add_argument("--features", default="1,3,5,8")
  p.add_argument("--discriminators", default="judge,likelihood,namer")
  p.add_argument("--steps", type=int, default=6)
  args = p.parse_args()
  os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"
  os.environ["JAX_PLATFORMS"] = "cpu"

import dataclasses  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinymodel  # noqa: E402
from tokenlabel_jax import data as data_lib  # noqa: E402
from tokenlabel_jax import discriminators as disc_lib  # noqa: E402
from tokenlabel_jax import labeling  # noqa: E402
from tokenlabel_jax import optimization as opt_lib  # noqa: E402
from tokenlabel_jax import selection  # noqa: E402
from tokenlabel_jax import sharding  # noqa: E402

WORDS = ["cat", "dog", "cow", "owl", "cup", "pen", "map", "box", "sun", "hat", "car", "bee"]


def feature(k: int) -> data_lib.Feature:
  """Feature k fires on its own 3 words, among random others."""
  rng = np.random.default_rng(k)
  pos = [WORDS[(k * 3 + j) % len(WORDS)] for j in range(3)]
  neg = [w for w in WORDS if w not in pos]
  records = []
  for i in range(32):
    words = [str(rng.choice(neg)) for _ in range(4)]
    acts = np.zeros(4, np.float32)
    if i % 2 == 0:
      j = int(rng.integers(4))
      words[j], acts[j] = str(rng.choice(pos)), float(rng.uniform(0.5, 3.0))
    acts.setflags(write=False)
    records.append(data_lib.Record(tuple([words[0]] + [" " + w for w in words[1:]]), acts, None, f"f{k}:{i}"))
  return data_lib.Feature(f"f{k}", tuple(records))


# The typicality prompt's neutral label (' things') is 7 byte tokens for the tiny model's tokenizer: off here.
SELECT = selection.SelectConfig(typical_disc="")


def labeling_config(steps: int = 6) -> opt_lib.LabelConfig:
  return opt_lib.LabelConfig(steps=steps, seeds=2, batch_size=8, n_train=16, n_val=8, n_heldout=8, top_k=3,
                             log_every=1000, checkpoint_every=1000, vocab_filter="all")


def main(args):
  assert len(jax.devices()) == args.devices, jax.devices()
  m = tinymodel.tiny_model()
  mesh = sharding.make_mesh(args.model_parallel)
  m = m._replace(params=sharding.place_params(mesh, m.params))
  place = sharding.FeaturePlacer(mesh)
  lcfg = labeling_config(args.steps)
  out = {"devices": len(jax.devices()), "mesh": dict(mesh.shape), "results": {}}
  with tempfile.TemporaryDirectory() as tmp:
    for name in args.discriminators.split(","):
      disc = disc_lib.get(name)
      if disc.kind == "likelihood":
        disc = dataclasses.replace(disc, neutral_label="x")  # one token for the byte-level tokenizer
      for n in map(int, args.features.split(",")):
        results = labeling.label_features(m, [feature(k) for k in range(n)], disc, lcfg,
                                          os.path.join(tmp, f"{name}{n}"), resume=False, place=place,
                                          scfg=SELECT)
        out["results"][f"{name}/{n}"] = [{"token_id": r["token_id"], "probability": r["probability"],
                                          "auc": r["heldout"]["auc"],
                                          "val_loss": [v["val_loss"] for v in r["verification"]]} for r in results]
  print(json.dumps(out))


if __name__ == "__main__":
  main(args)
