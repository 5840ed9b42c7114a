"""Labeling sharded over 8 simulated CPU devices gives the labels and losses of one device."""

import json
import os
import subprocess
import sys

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
  assert "features" in report[name]["label_sharding"]


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
