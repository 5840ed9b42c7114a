"""Run as a script under XLA_FLAGS=--xla_force_host_platform_device_count=8 (see test_sharding.py); prints JSON."""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import tinymodel  # noqa: E402
from tokenlabel_jax import discriminators as disc_lib  # noqa: E402
from tokenlabel_jax import model as model_lib  # noqa: E402
from tokenlabel_jax import optimization as opt_lib  # noqa: E402
from tokenlabel_jax import sharding  # noqa: E402

out = {"devices": len(jax.devices())}
m = tinymodel.tiny_model()
words = ["dog", "cup", "cat", "pen", "owl", "map", "cow", "box"]
mesh = sharding.make_mesh(1)
place = sharding.FeaturePlacer(mesh)
params = sharding.place_params(mesh, m.params)
for name in ("judge", "namer"):  # vmapped over features; the namer's step loops over them
  disc = disc_lib.get(name)
  rng = np.random.default_rng(0)
  preps, targets = [], []
  for f in range(8):
    ws = list(rng.permutation(words))
    preps.append(disc_lib.prepare(m.params, m.cfg, m.tokenizer, disc,
                                  [disc_lib.ExampleText(w, f"the [[{w}]] " + "x" * f) for w in ws]))
    targets.append(np.array([float(w in ("dog", "cat", "owl", "cow")) for w in ws], np.float32))
  prep, tgt = disc_lib.stack(preps), np.stack(targets)
  mask = np.ones(m.cfg.vocab_size, bool)
  lcfg = opt_lib.LabelConfig(steps=5, seeds=2, batch_size=4, log_every=100)
  single, hist1 = opt_lib.train(m.params, m.cfg, disc, lcfg, prep, tgt, mask, log=lambda s: None)
  sharded, hist8 = opt_lib.train(params, m.cfg, disc, lcfg, place(prep), tgt, mask, log=lambda s: None, place=place)
  v8 = sharded.label["v_NxV"]
  out[name] = {"label_sharding": str(place(sharded.label)["v_NxV"].sharding.spec),
               "prep_devices": len(place(prep).logq_BxV.sharding.device_set),
               "v_diff": float(jnp.abs(single.label["v_NxV"] - v8).max()),
               "same_argmax": bool((jnp.argmax(single.label["v_NxV"], -1) == jnp.argmax(v8, -1)).all()),
               "loss_diff": float(np.abs(np.array([h["loss"] for h in hist1])
                                         - np.array([h["loss"] for h in hist8])).max())}
# Tensor parallel: 2 feature shards x 4 model shards; the forward must not change.
tp_mesh = sharding.make_mesh(4)
tp_params = sharding.place_params(tp_mesh, m.params)
out["wq_sharding"] = str(tp_params["layers"]["wq_LxDxHE"].sharding.spec)
ids = jnp.asarray(np.random.default_rng(1).integers(0, 256, (2, 12)))
ref, _ = model_lib.forward_tokens(m.params, m.cfg, ids)
tp, _ = jax.jit(model_lib.forward_tokens, static_argnums=1)(tp_params, m.cfg, ids)
out["tp_logit_diff"] = float(jnp.abs(ref - tp).max())
print(json.dumps(out))
