"""Labeling sharded over 8 simulated CPU devices gives the labels and losses of one device."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def report():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, os.path.join(HERE, "sharded_check.py")], capture_output=True, text=True,
                        env=env, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["judge", "namer"])
def test_eight_devices_are_used(report, name):
  assert report["devices"] == 8
  assert "features" in report[name]["label_sharding"] and report[name]["prep_devices"] == 8


@pytest.mark.parametrize("name", ["judge", "namer"])
def test_sharded_features_match_one_device(report, name):
  assert report[name]["loss_diff"] < 1e-5
  assert report[name]["same_argmax"]
  # Adam divides by sqrt(second moment): where a gradient is ~0, a rounding difference flips the sign of a step of
  # size lr, so the logits themselves agree only to about lr * 1e-2 after a few steps.
  assert report[name]["v_diff"] < 1e-3


def test_tensor_parallel_forward_matches_replicated(report):
  assert "model" in report["wq_sharding"]
  assert report["tp_logit_diff"] < 1e-4


# ---------------------------------------------------------------------------------------------------------------
# The device matrix: any number of features on any number of devices, every discriminator, with and without tensor
# parallelism, through labeling.label_features (training step, verification, held-out report) as the launcher runs it.
# CI runs the small cases; TOKENLABEL_DEVICE_MATRIX=full runs devices 1, 2, 3, 8 x features 1, 3, 5, 8 (about
# 20 minutes on 2 cores).

FULL = os.environ.get("TOKENLABEL_DEVICE_MATRIX") == "full"
ALL = "judge,likelihood,namer"
# (devices, model_parallel, feature counts, discriminators). In CI: 1 and 3 features on 2 devices (both padded to
# fill the feature axis), and the tensor-parallel training step of the model-running discriminators.
MESHES = ([(d, mp, "1,3,5,8", ALL) for d, mp in [(2, 1), (2, 2), (3, 1), (8, 1), (8, 2), (8, 4)]] if FULL
          else [(2, 1, "1,3", ALL), (2, 2, "3", "judge,likelihood")])
_runs = {}


def _matrix(devices, model_parallel, features, discriminators):
  key = (devices, model_parallel, features, discriminators)
  if key not in _runs:
    proc = subprocess.run([sys.executable, os.path.join(HERE, "device_matrix.py"), f"--devices={devices}",
                           f"--model_parallel={model_parallel}", f"--features={features}",
                           f"--discriminators={discriminators}"],
                          capture_output=True, text=True, timeout=1800, check=False,
                          env={k: v for k, v in os.environ.items() if k != "XLA_FLAGS"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    _runs[key] = json.loads(proc.stdout.strip().splitlines()[-1])
  return _runs[key]


def _reference():
  return _matrix(1, 1, "1,3,5,8" if FULL else "1,3", ALL)


@pytest.mark.parametrize("devices, model_parallel, features, discriminators", MESHES)
def test_device_matrix_gives_the_labels_of_one_device(devices, model_parallel, features, discriminators):
  ref, run = _reference(), _matrix(devices, model_parallel, features, discriminators)
  assert run["devices"] == devices and run["mesh"] == {"features": devices // model_parallel, "model": model_parallel}
  assert run["results"] and set(run["results"]) <= set(ref["results"])
  for case, got in run["results"].items():
    want = ref["results"][case]
    assert [r["token_id"] for r in got] == [r["token_id"] for r in want], case
    for g, w in zip(got, want):
      np.testing.assert_allclose(g["val_loss"], w["val_loss"], atol=1e-4, err_msg=case)
      np.testing.assert_allclose(g["probability"], w["probability"], atol=1e-4, err_msg=case)
      assert g["auc"] == w["auc"], case


def test_a_feature_labeled_in_a_batch_matches_it_labeled_alone():
  """Feature f0 of a batch of 3 ends as it does alone: on one device, and on 2 devices where both are padded."""
  for run in (_reference(), _matrix(*MESHES[0])):
    for name in ALL.split(","):
      alone, batch = run["results"][f"{name}/1"][0], run["results"][f"{name}/3"][0]
      assert alone["token_id"] == batch["token_id"], name
      np.testing.assert_allclose(alone["val_loss"], batch["val_loss"], atol=1e-4)


def test_model_parallel_that_does_not_divide_the_model_is_a_clear_error():
  import tinymodel
  from tokenlabel_jax import sharding
  from tokenlabel_jax.errors import UserError
  m = tinymodel.tiny_model()
  sharding.check_model_parallel(m.params, 4)  # tiny: 4 heads, 2 KV heads of 16, MLP 128, vocabulary 256
  with pytest.raises(UserError, match="model_parallel=3 does not divide"):
    sharding.check_model_parallel(m.params, 3)


# ---------------------------------------------------------------------------------------------------------------
# Several hosts: two processes on this machine, 2 simulated CPU devices each, jax.distributed on 127.0.0.1 (JAX's
# gloo CPU collectives carry arrays between them).


def test_two_processes_label_as_one_and_one_writes(tmp_path):
  import socket
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "multihost_check.py"), str(i), "2", str(port),
                             str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
           for i in range(2)]
  outs, errs = [], []
  for p in procs:
    stdout, stderr = p.communicate(timeout=900)
    assert p.returncode == 0, stderr[-3000:]
    outs.append(json.loads(stdout.strip().splitlines()[-1]))
    errs.append(stderr)
  assert [o["process"] for o in outs] == [0, 1]
  assert all(o["processes"] == 2 and o["devices"] == 4 and o["local_devices"] == 2 for o in outs)
  assert outs[0]["results"] == outs[1]["results"]  # every process holds every result
  ref = _reference()["results"]
  for name, got in outs[0]["results"].items():  # 3 features over 4 devices in 2 processes = on one device
    want = ref[f"{name}/3"]
    assert [r["token_id"] for r in got] == [r["token_id"] for r in want], name
    for g, w in zip(got, want):
      np.testing.assert_allclose(g["val_loss"], w["val_loss"], atol=1e-4)
  for name in ("judge", "namer"):
    assert sorted(os.listdir(tmp_path / "out" / name / "f0")) == ["examples.json", "result.json", "trajectory.png"]
  # Process 0 reports the progress; process 1 reports nothing (and writes nothing: the files above are process 0's).
  assert "held-out AUC" in errs[0] and "held-out AUC" not in errs[1] and "step" not in errs[1]


@pytest.mark.parametrize("args, message", [
    (("127.0.0.1:1234", None, None), "--num_processes, --process_id"),
    ((None, 2, None), "--coordinator_address, --process_id"),
    ((None, None, 0), "--coordinator_address, --num_processes"),
    (("127.0.0.1:1234", 2, 2), "not in 0..1"),
])
def test_inconsistent_multi_host_flags_are_a_clear_error(args, message):
  from tokenlabel_jax import sharding
  from tokenlabel_jax.errors import UserError
  with pytest.raises(UserError, match=message):
    sharding.init_distributed(*args)
