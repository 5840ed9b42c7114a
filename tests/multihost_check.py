"""One process of a multi-host job on this machine (see test_sharding.py): 2 simulated CPU devices per process,
jax.distributed on 127.0.0.1, features labeled across every process's devices; prints the results as JSON.

  python tests/multihost_check.py PROCESS_ID NUM_PROCESSES PORT OUTPUT_DIR
"""

import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"
process_id, num_processes, port, output_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]

import jax  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from device_matrix import SELECT, feature, labeling_config  # noqa: E402
import tinymodel  # noqa: E402
from tokenlabel_jax import discriminators as disc_lib  # noqa: E402
from tokenlabel_jax import labeling  # noqa: E402
from tokenlabel_jax import sharding  # noqa: E402

sharding.init_distributed(f"127.0.0.1:{port}", num_processes, process_id)
m = tinymodel.tiny_model()
mesh = sharding.make_mesh(1)
m = m._replace(params=sharding.place_params(mesh, m.params))
out = {"process": jax.process_index(), "processes": jax.process_count(), "devices": len(jax.devices()),
       "local_devices": len(jax.local_devices()), "results": {}}
for name in ("judge", "namer"):
  results = labeling.label_features(m, [feature(k) for k in range(3)], disc_lib.get(name), labeling_config(),
                                    os.path.join(output_dir, name), resume=True, place=sharding.FeaturePlacer(mesh),
                                    scfg=SELECT)
  out["results"][name] = [{"token_id": r["token_id"], "val_loss": [v["val_loss"] for v in r["verification"]]}
                          for r in results]
print(json.dumps(out))
