"""One run per output directory: an advisory lock file, so two runs never interleave their checkpoints and results.

The lock is `flock` on DIR/.lock, held for the life of the process: the kernel drops it when the process ends, however
it ends (a killed run leaves no stale lock). The file records the holder's pid and host for the message.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Iterator

from tokenlabel_jax.errors import UserError

LOCK_NAME = ".lock"


class Lock:
  """A held lock on DIR/.lock; `release()` (or the end of the process) frees it."""

  def __init__(self, fd: int | None, path: str):
    self._fd, self.path = fd, path

  def release(self) -> None:
    if self._fd is not None:
      os.close(self._fd)  # closing the descriptor releases the flock
      self._fd = None


def acquire(output_dir: str, wait_s: float = 0.0) -> Lock:
  """Takes DIR/.lock; waits up to `wait_s` seconds for another run to finish, then refuses with a UserError."""
  try:
    import fcntl  # pylint: disable=import-outside-toplevel
  except ImportError:  # not POSIX: no lock
    return Lock(None, "")
  path = os.path.join(output_dir, LOCK_NAME)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  deadline = time.monotonic() + wait_s
  while True:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      break
    except BlockingIOError:
      if time.monotonic() >= deadline:
        os.close(fd)
        raise UserError(f"another run ({_read_holder(path)}) is writing to {output_dir}",
                        "wait for it to finish (or stop it), pass --lock_wait_s=SECONDS to wait, or choose another "
                        "--output_dir") from None
      time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
  os.ftruncate(fd, 0)
  os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
  return Lock(fd, path)


@contextlib.contextmanager
def hold(output_dir: str, wait_s: float = 0.0) -> Iterator[str]:
  """`acquire` for the length of a `with` block."""
  lock = acquire(output_dir, wait_s)
  try:
    yield lock.path
  finally:
    lock.release()


def _read_holder(path: str) -> str:
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      return f.read().strip() or "unknown process"
  except OSError:
    return "unknown process"
