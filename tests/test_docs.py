"""The documentation names only things that exist: files, scripts, launcher flags, and the sections it links to.

Read: README.md, docs/*.md, every README.md under experiments/ and the result files experiments/results/*.md (whose
"Made by" line is the command to re-run). What is checked:

- Paths. A path counts when its first part is one of tokenlabel_jax/, experiments/, scripts/, tests/ or docs/ (as
  written from the repository root) or when it is a markdown link's target (resolved from the linking file). Paths
  under experiments/runs/, experiments/data/benchmark/ and experiments/data/norms*_siblings/ are outputs of commands
  (not committed) and are not checked, nor is anything under runs/, .venv/ or ~/. Placeholders are skipped (`<name>`, `NNNNN`); `{a,b}` is
  expanded and `*` must match at least one file. `tests/x.py::test_name` also needs that test function.
- Links to sections: `file.md#anchor` needs a heading of that file whose GitHub anchor is `anchor`.
- Commands. `python -m tokenlabel_jax.<tool>` needs the module; every `--flag` after it (up to the end of the command)
  must be one the launcher defines: for label, score, sae, dry_run and report the DEFINE_* calls of its source, read
  with `ast` (nothing is imported, so no flag registry is shared between launchers); `--noflag` negates a boolean.
  `python <path>.py` needs the script, and each `--flag` after it must appear in the script's source as "--flag"
  (or in experiments/common.py's, for scripts that parse their flags with `common.setup`).

Commands are read from fenced code blocks (lines joined at a trailing backslash) and from inline code spans (which
may wrap across lines).
"""

from __future__ import annotations

import ast
import glob
import itertools
import os
import re
import unicodedata

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKED_ROOTS = ("tokenlabel_jax/", "experiments/", "scripts/", "tests/", "docs/")
OUTPUT_PREFIXES = ("experiments/runs", "experiments/data/benchmark",  # made by commands, ignored by git
                   "experiments/data/norms_siblings", "experiments/data/norms2_siblings")
LAUNCHERS = {"label": "tokenlabel_jax/label.py", "score": "tokenlabel_jax/score.py",
             "sae": "tokenlabel_jax/sae/__main__.py", "dry_run": "tokenlabel_jax/dry_run.py",
             "report": "tokenlabel_jax/report.py"}
ABSL_FLAGS = {"help", "helpshort", "helpfull", "helpxml", "flagfile", "undefok"}


def doc_files(root: str = ROOT) -> list[str]:
  files = [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))
  files += sorted(glob.glob(os.path.join(root, "experiments", "**", "README.md"), recursive=True))
  files += sorted(glob.glob(os.path.join(root, "experiments", "results", "*.md")))
  return [f for f in files if os.path.isfile(f) and os.sep + os.path.join("experiments", "data") + os.sep not in f]


# ----------------------------------------------------------------------------------------------------------------
# Reading the markdown.


def code_segments(text: str) -> list[str]:
  """Every command-bearing piece: each logical line of a fenced block, and each inline code span outside blocks."""
  out = []
  def block(m):
    for line in re.sub(r"\\\n", " ", m.group(1)).split("\n"):
      out.append(line.split(" #")[0] if not line.lstrip().startswith("#") else "")
    return "\n"
  rest = re.sub(r"```[^\n]*\n(.*?)```", block, text, flags=re.S)
  out += [m.group(1).replace("\n", " ") for m in re.finditer(r"`([^`]+)`", rest)]
  return [s for s in out if s.strip()]


def commands(segment: str) -> list[tuple[str, list[str]]]:
  """(target, flags) per python command in a segment: target "-m tokenlabel_jax.x" or a script path."""
  out = []
  tokens = segment.split()
  for i, tok in enumerate(tokens):
    if not re.fullmatch(r"(\S*/)?python3?", tok) or i + 1 >= len(tokens):
      continue
    j = i + 1
    if tokens[j] == "-m" and j + 1 < len(tokens):
      target, j = "-m " + tokens[j + 1], j + 2
    elif tokens[j].endswith(".py"):
      target, j = tokens[j], j + 1
    else:
      continue
    flags = []
    for t in tokens[j:]:
      if t in ("&&", "||", ";", "|") or re.fullmatch(r"\S*python3?", t) or t.startswith(("2>", ">")):
        break
      if t.startswith("--"):
        flags.append(t[2:].split("=")[0].strip("`.,;)"))
    out.append((target, flags))
  return out


PATH_RE = re.compile(r"(?<![\w./~-])((?:tokenlabel_jax|experiments|scripts|tests|docs)/[\w./{},*<>:@-]*[\w}*>])")


def named_paths(text: str) -> set[str]:
  return {m.group(1) for m in PATH_RE.finditer(text)}


def links(text: str) -> set[str]:
  """Markdown link targets that are files of this repository (no scheme)."""
  return {m.group(1) for m in re.finditer(r"\]\(([^)\s]+)\)", text) if "://" not in m.group(1)
          and not m.group(1).startswith("mailto:")}


def anchor(heading: str) -> str:
  """GitHub's anchor of a heading: lower case, punctuation dropped (letters of any script kept), spaces to '-'."""
  h = heading.strip().lower()
  h = "".join(c for c in h if c in " -_" or unicodedata.category(c)[0] in "LN")
  return h.replace(" ", "-")


def anchors(path: str) -> set[str]:
  text = open(path, encoding="utf-8").read()
  text = re.sub(r"```.*?```", "", text, flags=re.S)
  return {anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.*)$", text, flags=re.M)}


def expand(path: str) -> list[str]:
  """`a/{b,c}.{md,json}` -> its alternatives."""
  parts = re.split(r"(\{[^}]*\})", path)
  options = [p[1:-1].split(",") if p.startswith("{") else [p] for p in parts]
  return ["".join(c) for c in itertools.product(*options)]


# ----------------------------------------------------------------------------------------------------------------
# What exists.


def launcher_flags(source_file: str) -> set[str]:
  """Flag names defined by absl DEFINE_* calls in a launcher's source (booleans also as --no<name>)."""
  tree = ast.parse(open(source_file, encoding="utf-8").read())
  names = set(ABSL_FLAGS)
  for node in ast.walk(tree):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.startswith("DEFINE_"):
      if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        name = node.args[0].value
        names.add(name)
        if node.func.attr in ("DEFINE_bool", "DEFINE_boolean"):
          names.add("no" + name)
  return names


def path_problem(path: str, base_dir: str, root: str = ROOT) -> str | None:
  """Why a named path is wrong, or None. `base_dir`: where a relative link is resolved from."""
  path = path.rstrip(".,;:)")
  if any(s in path for s in ("<", ">", "NNNN")):
    return None
  path, _, test_name = path.partition("::")
  for alt in expand(path):
    full = os.path.normpath(os.path.join(base_dir, alt))
    if "*" in alt:
      if not glob.glob(full):
        return f"{alt}: no file matches"
      continue
    if not os.path.exists(full):
      return f"{alt}: no such file or directory"
    if test_name and not re.search(rf"^def {re.escape(test_name)}\(", open(full, encoding="utf-8").read(), re.M):
      return f"{alt}: no test {test_name}"
  return None


def problems(root: str = ROOT) -> list[str]:
  out = []
  flags_of = {tool: launcher_flags(os.path.join(root, f)) for tool, f in LAUNCHERS.items()
              if os.path.isfile(os.path.join(root, f))}
  # A script whose flags a shared helper defines: the helper's call, and the file that defines them.
  helpers = {"common.setup(": "experiments/common.py", "chooser.rescoring_run(": "experiments/naming/chooser.py"}
  for doc in doc_files(root):
    rel_doc = os.path.relpath(doc, root)
    text = open(doc, encoding="utf-8").read()
    # Paths as written from the repository root.
    for p in sorted(named_paths(text)):
      if any(p.rstrip("/.,;:)") == o or p.startswith(o + "/") for o in OUTPUT_PREFIXES) \
          or not p.startswith(CHECKED_ROOTS):
        continue
      why = path_problem(p, root, root)
      if why:
        out.append(f"{rel_doc}: {why}")
    # Links, resolved from the document, and their anchors.
    for target in sorted(links(text)):
      file, _, frag = target.partition("#")
      full = os.path.normpath(os.path.join(os.path.dirname(doc), file)) if file else doc
      if file:
        why = path_problem(file, os.path.dirname(doc), root)
        if why:
          out.append(f"{rel_doc}: {why}")
          continue
      if frag and full.endswith(".md") and frag not in anchors(full):
        out.append(f"{rel_doc}: link {target}: no section #{frag} in {os.path.relpath(full, root)}")
    # Commands and their flags.
    for seg in code_segments(text):
      for target, flags in commands(seg):
        if target.startswith("-m "):
          module = target[3:]
          if not module.startswith("tokenlabel_jax"):
            continue
          tool = module.split(".", 1)[1] if "." in module else ""
          mod_path = os.path.join(root, *module.split("."))
          if not (os.path.isfile(mod_path + ".py") or os.path.isfile(os.path.join(mod_path, "__main__.py"))):
            out.append(f"{rel_doc}: python -m {module}: no such module")
            continue
          known = flags_of.get(tool)
          if known is None:
            continue
          out += [f"{rel_doc}: python -m {module} --{f}: not a flag of {LAUNCHERS[tool]}" for f in flags
                  if f not in known]
        else:
          script = target[2:] if target.startswith("./") else target
          if not script.startswith(CHECKED_ROOTS) or "<" in script:
            continue
          full = os.path.join(root, script)
          if not os.path.isfile(full):
            out.append(f"{rel_doc}: python {script}: no such script")
            continue
          src = open(full, encoding="utf-8").read()
          src += "".join(open(os.path.join(root, path), encoding="utf-8").read()
                         for call, path in helpers.items() if call in src)
          out += [f"{rel_doc}: python {script} --{f}: not in the script's source" for f in flags
                  if f"\"--{f}\"" not in src and f"'--{f}'" not in src]
  return list(dict.fromkeys(out))  # a path named twice (as text and as a link) is reported once


# ----------------------------------------------------------------------------------------------------------------
# Tests.


def test_commands_are_read_from_blocks_and_spans():
  text = ("Run `python experiments/a/b.py --split tune\n--limit 3` then:\n\n```bash\n"
          ".venv/bin/python -m tokenlabel_jax.label --features=x \\\n  --steps=3  # a comment --not_this\n"
          "bash scripts/setup.sh && python -m tokenlabel_jax.report runs/x\n```\n")
  cmds = [c for s in code_segments(text) for c in commands(s)]
  assert cmds == [("-m tokenlabel_jax.label", ["features", "steps"]), ("-m tokenlabel_jax.report", []),
                  ("experiments/a/b.py", ["split", "limit"])]
  assert named_paths("see `tests/test_x.py::test_y`, experiments/results/a_{b,c}.md.") == {
      "tests/test_x.py::test_y", "experiments/results/a_{b,c}.md"}
  assert expand("r/a_{b,c}.{md,json}") == ["r/a_b.md", "r/a_b.json", "r/a_c.md", "r/a_c.json"]
  assert anchor("The λ trade-off") == "the-λ-trade-off" and anchor("The paper's four features") == \
      "the-papers-four-features"


def test_a_missing_file_or_flag_is_reported(tmp_path):
  """The checker itself: a doc naming a file, a section, a script flag and a launcher flag that do not exist."""
  for d in ("docs", "experiments/x", "tokenlabel_jax", "tests"):
    (tmp_path / d).mkdir(parents=True)
  (tmp_path / "experiments" / "common.py").write_text('ap.add_argument("--model")\n')
  (tmp_path / "experiments" / "x" / "run.py").write_text('common.setup("x", **{"--split": {}})\n')
  (tmp_path / "tokenlabel_jax" / "label.py").write_text('flags.DEFINE_string("features", None, "")\n'
                                                       'flags.DEFINE_bool("plots", True, "")\n')
  (tmp_path / "docs" / "a.md").write_text("# A\n\n## Results here\n")
  (tmp_path / "README.md").write_text(
      "`python experiments/x/run.py --split tune --model m --limit 3`\n"
      "`python -m tokenlabel_jax.label --features=f --noplots --steps=3`\n"
      "[ok](docs/a.md#results-here) [gone](docs/b.md) [bad](docs/a.md#nothing) `tests/test_none.py`\n"
      "Made by commands, not required: `experiments/runs`, `experiments/data/benchmark/`.\n")
  assert sorted(problems(str(tmp_path))) == sorted([
      "README.md: tests/test_none.py: no such file or directory",
      "README.md: docs/b.md: no such file or directory",
      "README.md: link docs/a.md#nothing: no section #nothing in docs/a.md",
      "README.md: python experiments/x/run.py --limit: not in the script's source",
      "README.md: python -m tokenlabel_jax.label --steps: not a flag of tokenlabel_jax/label.py",
  ])


def test_docs_name_only_what_exists():
  assert len(doc_files()) >= 8
  found = problems()
  assert not found, "the documentation names what does not exist:\n" + "\n".join(found)


@pytest.mark.parametrize("tool", sorted(LAUNCHERS))
def test_launchers_are_where_the_docs_test_reads_them(tool):
  assert os.path.isfile(os.path.join(ROOT, LAUNCHERS[tool]))
