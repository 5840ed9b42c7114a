"""One error type for everything a user can fix, and the launcher wrapper that prints it without a traceback."""

from __future__ import annotations

import dataclasses
import numbers
import os
import sys


class UserError(Exception):
  """A problem in the user's input or environment: `what` went wrong and `fix` says how to mend it."""

  def __init__(self, what: str, fix: str = ""):
    self.what = what
    self.fix = fix
    super().__init__(f"{what}" + (f"\n  fix: {fix}" if fix else ""))


INTERRUPTED = ("interrupted: files written so far are kept; the same label, explain or sae command resumes from them "
               "(finished features, checkpoints, the SAE's cached stages)")


def exit_on_user_error(fn):
  """Wraps an absl `main`: a UserError becomes one message on stderr and exit status 2, never a traceback; Ctrl-C
  one line saying what is kept, and status 130 (the shell's for SIGINT)."""

  def wrapped(*args, **kwargs):
    try:
      return fn(*args, **kwargs)
    except UserError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
    except KeyboardInterrupt:
      print(f"\n{INTERRUPTED}", file=sys.stderr)
      sys.exit(130)

  wrapped.__name__ = getattr(fn, "__name__", "main")
  wrapped.__doc__ = fn.__doc__
  return wrapped


def check_no_arguments(argv, features_flag: bool = True) -> None:
  """absl leaves words that are not flags in argv. The likeliest is a shell glob, `--features=dir/*.jsonl`, which
  passes the first file as the flag and the rest as words: that gets a fix of its own."""
  if len(argv) > 1:
    fix = "pass options as --flag=value"
    if features_flag and any(os.path.exists(a) for a in argv[1:]):
      fix = ("--features takes one file or a directory; a shell pattern such as --features=dir/*.jsonl passes "
             "several files: pass the directory")
    raise UserError(f"unexpected arguments {list(argv[1:])}", fix)


def parse_flags(argv):
  """absl's flag parser for `app.run(main, flags_parser=parse_flags)`: a bad flag (an unknown enum value, a missing
  required flag, a malformed number) exits with status 2 like every other input error, where absl exits 1."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f"error: {e}\n  fix: see --helpshort for the flags and their allowed values", file=sys.stderr)
    sys.exit(2)


def check_settings(settings, checks, flags=None) -> None:
  """Raises a UserError for the first `(name, ok, rule)` of `checks` that is not ok, naming the setting, its value
  (an attribute of `settings`), the rule and the launcher flag that sets it (`flags[name]`, else --name; a flag of
  None: no launcher has one)."""
  for name, ok, rule in checks:
    if not ok:
      flag = (flags or {}).get(name, name)
      raise UserError(f"{name}={getattr(settings, name)!r} is not allowed",
                      f"give {name} {rule}" + (f" (--{flag})" if flag else ""))


_KINDS = {bool: (bool,), int: (numbers.Integral,), float: (numbers.Real,), str: (str,), tuple: (tuple, list)}
_WORDS = {bool: "True or False", int: "an integer", float: "a number", str: "a string", tuple: "a tuple"}


def check_types(settings) -> None:
  """Raises a UserError where a field of the dataclass `settings` does not hold its default's kind of value (a string
  for a count, None for a threshold), which the range checks would otherwise meet as a TypeError."""
  for f in dataclasses.fields(settings):
    value, kinds = getattr(settings, f.name), _KINDS.get(type(f.default))
    if kinds and (not isinstance(value, kinds) or (isinstance(value, bool) and type(f.default) is not bool)):
      kind = _WORDS[type(f.default)]
      raise UserError(f"{f.name}={value!r} is not {kind}", f"give {f.name} {kind}, e.g. {f.default!r}")
