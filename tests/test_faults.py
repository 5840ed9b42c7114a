"""Faults a user meets: a corrupted checkpoint, two runs on one output directory, transformers' note about PyTorch."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import helpers
import tinymodel
from test_labeling import LCFG, ROOT, _run_cli, write_feature
from tokenlabel_jax import api as tl_api
from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import errors
from tokenlabel_jax import labeling
from tokenlabel_jax import runfiles
from tokenlabel_jax import runlock
from tokenlabel_jax.errors import UserError


@pytest.fixture(scope="module")
def tiny():
  return tinymodel.tiny_model()


@pytest.fixture(scope="module")
def feature(tmp_path_factory):
  return data_lib.load_features(write_feature(tmp_path_factory.mktemp("f") / "toy.jsonl"))[0]


def _scramble(step_dir, seed=0):
  """Overwrites every file of a checkpoint with random bytes of the same length."""
  rng = np.random.default_rng(seed)
  n = 0
  for root, _, files in os.walk(step_dir):
    for name in files:
      path = os.path.join(root, name)
      size = max(os.path.getsize(path), 16)
      with open(path, "wb") as f:
        f.write(rng.bytes(size))
      n += 1
  assert n > 0


@pytest.mark.parametrize("scrambled", [["12"], ["12", "8"]])
def test_corrupted_checkpoint_falls_back_or_starts_over(tiny, feature, tmp_path, scrambled, capsys):
  disc = disc_lib.get("namer")
  reference = labeling.label_feature(tiny, feature, disc, LCFG, str(tmp_path / "ref"), resume=False)
  out = tmp_path / "run" / "toy"
  labeling.label_feature(tiny, feature, disc, LCFG, str(out))
  ckpt = out / "checkpoints"
  for step in scrambled:
    _scramble(ckpt / step)
  capsys.readouterr()
  again = labeling.label_feature(tiny, feature, disc, LCFG, str(out))
  err = capsys.readouterr().err
  for step in scrambled:
    assert f"checkpoint at step {step} is unreadable" in err
    assert (ckpt / f"corrupt-{step}").is_dir()  # kept aside for inspection
  if len(scrambled) == 1:
    assert "resumed from step 8" in err
  else:
    assert "starting over from step 0" in err and "resumed" not in err
  # Either way the run ends with the label of an uninterrupted run, and fresh checkpoints.
  assert again["label"] == reference["label"] and again["top_k"] == reference["top_k"]
  assert {"12", "8"} <= set(os.listdir(ckpt))


def test_second_run_on_same_output_dir_is_refused(tmp_path):
  out = tmp_path / "out"
  out.mkdir()
  feats = write_feature(tmp_path / "toy.jsonl")
  holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from tokenlabel_jax import runlock; "
                             f"runlock.acquire({str(out)!r}); print('held', flush=True); time.sleep(60)"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")))
  try:
    assert holder.stdout.readline().strip() == "held"
    proc = _run_cli(f"--features={feats}", f"--output_dir={out}", "--steps=2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"pid {holder.pid}" in proc.stderr and "another run" in proc.stderr and "fix:" in proc.stderr
    with pytest.raises(UserError, match="another run"):
      runlock.acquire(str(out), wait_s=0.3)
  finally:
    holder.kill()
    holder.wait()
  # The holder is gone (killed, not cleaned up): the kernel dropped its lock, nothing stale is left.
  lock = runlock.acquire(str(out))
  assert open(lock.path).read().startswith(f"pid {os.getpid()} ")
  lock.release()


def test_lock_waits_for_a_run_that_ends(tmp_path):
  holder = subprocess.Popen([sys.executable, "-c", "import time; from tokenlabel_jax import runlock; "
                             f"runlock.acquire({str(tmp_path)!r}); print('held', flush=True); time.sleep(1.5)"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")))
  assert holder.stdout.readline().strip() == "held"
  t0 = time.monotonic()
  lock = runlock.acquire(str(tmp_path), wait_s=30)
  assert 0.3 < time.monotonic() - t0 < 30
  lock.release()
  holder.wait()


def test_no_pytorch_note_without_torch():
  """Without torch (a user's install), importing the package and its tokenizers prints nothing about PyTorch."""
  code = ("import sys; sys.modules['torch'] = None; import tokenlabel_jax; from tokenlabel_jax import tokenizer; "
          "import transformers; from transformers.utils import is_torch_available; "
          "assert not is_torch_available(); print('ok')")
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                        env=dict(os.environ, PYTHONPATH=ROOT), check=False)
  assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
  assert "PyTorch was not found" not in proc.stderr


@pytest.mark.model
def test_cli_resumes_past_a_corrupted_checkpoint(tmp_path):
  """The reported fault end to end: the launcher, its newest checkpoint overwritten with random bytes, run again."""
  feats = write_feature(tmp_path / "toy.jsonl")
  args = [f"--features={feats}", f"--output_dir={tmp_path / 'out'}", "--steps=6", "--checkpoint_every=3", "--seeds=1",
          "--n_train=16", "--n_val=8", "--n_heldout=8", "--log_every=3"]
  first = _run_cli(*args)
  assert first.returncode == 0, first.stderr[-2000:]
  ckpt = tmp_path / "out" / "toy" / "checkpoints"
  assert sorted(os.listdir(ckpt)) == ["3", "6"]
  _scramble(ckpt / "6")
  os.remove(tmp_path / "out" / "toy" / "result.json")  # killed before the result was written: it labels again
  second = _run_cli(*args)
  assert second.returncode == 0 and "Traceback" not in second.stderr, second.stderr[-2000:]
  assert "checkpoint at step 6 is unreadable" in second.stderr and "resumed from step 3" in second.stderr
  label = lambda proc: [l for l in proc.stdout.splitlines() if l.startswith("toy:")]
  assert label(second) == label(first)


def test_checkpoint_of_other_shapes_is_refused_not_moved(tiny, feature, tmp_path):
  """A readable checkpoint made with other settings that change array shapes (--seeds) is not mistaken for a
  damaged one: it is refused and left where it is."""
  import dataclasses
  disc = disc_lib.get("namer")
  out = tmp_path / "toy"
  labeling.label_feature(tiny, feature, disc, LCFG, str(out))
  with pytest.raises(UserError, match="other settings"):
    labeling.label_feature(tiny, feature, disc, dataclasses.replace(LCFG, seeds=3), str(out))
  assert sorted(os.listdir(out / "checkpoints")) == ["12", "8"]


@pytest.mark.model
def test_ctrl_c_ends_a_run_with_one_line_and_keeps_its_checkpoints(tmp_path):
  """Was: a KeyboardInterrupt traceback from inside JAX. Ctrl-C (SIGINT) mid-run now ends with one line saying what
  is kept, exit status 130, and the checkpoints written before it stay for the next run to resume from."""
  feats = write_feature(tmp_path / "toy.jsonl")
  out = tmp_path / "out"
  proc = subprocess.Popen([sys.executable, "-m", "tokenlabel_jax.label", f"--features={feats}", f"--output_dir={out}",
                           "--steps=100000", "--checkpoint_every=2", "--log_every=1", "--seeds=1", "--n_train=16",
                           "--n_val=8", "--n_heldout=8"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
  try:
    seen = []
    for line in proc.stderr:  # wait until the gradient run has passed a checkpoint
      seen.append(line)
      if re.search(r"step\s+[4-9]\b", line):
        break
    assert proc.poll() is None, "".join(seen)[-2000:]
    proc.send_signal(signal.SIGINT)
    err = "".join(seen) + proc.stderr.read()
    assert proc.wait(timeout=120) == 130, err[-2000:]
  finally:
    proc.kill()
  assert "Traceback" not in err and errors.INTERRUPTED in err, err[-2000:]
  assert os.listdir(out / "toy" / "checkpoints")  # the work done is kept


def _full_disk_at(suffix):
  """An `open` for runfiles whose files ending in `suffix` fill the disk."""
  real_open = open
  return lambda path, *a, **k: (helpers.FullDiskFile(real_open(path, *a, **k)) if str(path).endswith(suffix)
                                else real_open(path, *a, **k))


def test_a_full_disk_while_writing_a_result_is_one_message_and_leaves_no_half_file(tmp_path, monkeypatch):
  """Was: an OSError traceback, and result.json written in place (a run killed mid-write left half a file)."""
  m = tinymodel.tiny_model()
  model = tl_api.model_from_params(m.params, m.cfg, m.tokenizer)
  recs = [json.loads(l) for l in open(write_feature(tmp_path / "toy.jsonl"))]
  monkeypatch.setattr(runfiles, "open", _full_disk_at("result.json.tmp"), raising=False)
  with pytest.raises(UserError) as e:
    tl_api.label(model, {"toy": recs}, discriminator="namer", output_dir=tmp_path / "run", steps=0, n_train=16,
                 n_val=8, n_heldout=8, vocab_filter="all")
  assert "result.json (No space left on device)" in e.value.what and "same command resumes" in e.value.fix
  assert sorted(os.listdir(tmp_path / "run" / "toy")) == ["examples.json"]  # no result.json, no .tmp left



@pytest.mark.parametrize("suffix", ["index.html.tmp", "explanations.jsonl.tmp", "toy.txt.tmp"])
def test_a_full_disk_at_the_report_is_one_message_and_the_same_call_writes_it(tmp_path, monkeypatch, suffix):
  """Was: an OSError traceback from the report or the explanation files, after every feature was labeled."""
  m = tinymodel.tiny_model()
  model = tl_api.model_from_params(m.params, m.cfg, m.tokenizer)
  recs = [json.loads(l) for l in open(write_feature(tmp_path / "toy.jsonl"))]
  run = tmp_path / "run"
  kw = dict(discriminator="namer", output_dir=run, steps=0, n_train=16, n_val=8, n_heldout=8, vocab_filter="all")
  monkeypatch.setattr(runfiles, "open", _full_disk_at(suffix), raising=False)
  with pytest.raises(UserError) as e:
    tl_api.label(model, {"toy": recs}, **kw)
  assert "(No space left on device)" in e.value.what and "result.json" in e.value.fix
  assert (run / "toy" / "result.json").exists() and not list(run.rglob("*.tmp"))
  done = (run / "toy" / "result.json").stat().st_mtime_ns
  monkeypatch.undo()
  again = tl_api.label(model, {"toy": recs}, **kw)  # the fix's "same call": the label is kept, the files written
  assert again["toy"].label == json.loads((run / "toy" / "result.json").read_text())["label"]
  assert (run / "index.html").exists() and (run / "explanations.jsonl").exists()
  assert (run / "explanations" / "toy.txt").exists() and (run / "toy" / "result.json").stat().st_mtime_ns == done


@pytest.mark.model
def test_cli_stops_at_a_full_disk_instead_of_failing_every_feature(tmp_path):
  """The launcher ends the run at the first file it cannot write: the features after it would fail alike."""
  feats = tmp_path / "feats"
  feats.mkdir()
  write_feature(feats / "one.jsonl")
  write_feature(feats / "two.jsonl", seed=1)
  code = ("import errno, importlib, sys\nfrom absl import app\nfrom tokenlabel_jax import errors, runfiles\n"
          "label = importlib.import_module('tokenlabel_jax.label')  # the launcher, not the API's tl.label\n"
          "real_open = open\n"
          "def fake(path, *a, **k):\n"
          "  if str(path).endswith('result.json.tmp'):\n"
          "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
          "  return real_open(path, *a, **k)\n"
          "runfiles.open = fake\n"
          "app.run(label.main, argv=['label'] + sys.argv[1:], flags_parser=errors.parse_flags)\n")
  proc = subprocess.run([sys.executable, "-c", code, f"--features={feats}", f"--output_dir={tmp_path / 'out'}",
                         "--features_per_batch=1", "--n_val=8", "--n_heldout=8"], capture_output=True, text=True,
                        cwd=ROOT, timeout=300, check=False)
  assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
  assert proc.stderr.count("No space left on device") == 1 and "features 2-2" not in proc.stderr
