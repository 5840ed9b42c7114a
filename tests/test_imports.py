"""The package's modules import one another without a circle.

A circle hidden in a function-level import still means neither module can be read, changed or tested without the
other; it is how `labeling` <-> `selection` and `data` <-> `formats` grew. So the graph here counts every import
statement of a `tokenlabel_jax` module, at module level and inside functions alike, read from the source with `ast`
(nothing is imported, so the test is instant and cannot be fooled by import order).

An edge goes to the module named: `from tokenlabel_jax import data` is an edge to `tokenlabel_jax.data`,
`from tokenlabel_jax.discriminators import DiscriminatorConfig` one to the package `tokenlabel_jax.discriminators`.
The implicit import of a parent package (Python runs `discriminators/__init__.py` before `discriminators/rows.py`)
is not an edge: a package's `__init__` that gathers its own submodules would otherwise always be a circle.
"""

from __future__ import annotations

import ast
import os

PACKAGE = "tokenlabel_jax"
ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), PACKAGE)


def module_files(root: str = ROOT) -> dict[str, str]:
  """{dotted module name: file} for every .py file of the package."""
  out = {}
  for d, _, files in os.walk(root):
    for f in files:
      if not f.endswith(".py"):
        continue
      rel = os.path.relpath(os.path.join(d, f), os.path.dirname(root))[:-3].split(os.sep)
      if rel[-1] == "__init__":
        rel = rel[:-1]
      out[".".join(rel)] = os.path.join(d, f)
  return out


def imports_of(name: str, file: str, modules: set[str]) -> set[str]:
  """The package's modules that `file` (module `name`) imports anywhere in its body."""
  with open(file, encoding="utf-8") as f:
    tree = ast.parse(f.read(), file)
  is_package = os.path.basename(file) == "__init__.py"
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:  # relative: resolved against the importing module's package
        parts = name.split(".") if is_package else name.split(".")[:-1]
        parts = parts[:len(parts) - (node.level - 1)]
        base = ".".join(parts + ([base] if base else []))
      for a in node.names:
        out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
  return {m for m in out if m in modules and m != name}


def import_graph(root: str = ROOT) -> dict[str, set[str]]:
  files = module_files(root)
  return {name: imports_of(name, file, set(files)) for name, file in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One circle as a list of modules (first == last), or None."""
  state: dict[str, int] = {}  # 1: on the current path, 2: done
  path: list[str] = []

  def visit(n: str) -> list[str] | None:
    state[n] = 1
    path.append(n)
    for m in sorted(graph.get(n, ())):
      if state.get(m) == 1:
        return path[path.index(m):] + [m]
      if m not in state and (found := visit(m)):
        return found
    state[n] = 2
    path.pop()
    return None

  for n in sorted(graph):
    if n not in state and (found := visit(n)):
      return found
  return None


def test_graph_sees_function_level_imports(tmp_path):
  pkg = tmp_path / PACKAGE
  pkg.mkdir()
  (pkg / "__init__.py").write_text("")
  (pkg / "a.py").write_text("from tokenlabel_jax import b\n")
  (pkg / "b.py").write_text("def f():\n  from tokenlabel_jax import a\n  return a\n")
  graph = import_graph(str(pkg))
  assert graph["tokenlabel_jax.b"] == {"tokenlabel_jax.a"}
  assert find_cycle(graph) == ["tokenlabel_jax.a", "tokenlabel_jax.b", "tokenlabel_jax.a"]


def test_graph_resolves_packages_and_relative_imports(tmp_path):
  pkg = tmp_path / PACKAGE
  (pkg / "sub").mkdir(parents=True)
  (pkg / "__init__.py").write_text("")
  (pkg / "sub" / "__init__.py").write_text("from tokenlabel_jax.sub.x import X\n")
  (pkg / "sub" / "x.py").write_text("from . import y\nX = 1\n")
  (pkg / "sub" / "y.py").write_text("import os\n")
  (pkg / "c.py").write_text("from tokenlabel_jax.sub import X\nfrom tokenlabel_jax.sub import y\n")
  graph = import_graph(str(pkg))
  assert graph["tokenlabel_jax.sub"] == {"tokenlabel_jax.sub.x"}
  assert graph["tokenlabel_jax.sub.x"] == {"tokenlabel_jax.sub.y"}
  assert graph["tokenlabel_jax.c"] == {"tokenlabel_jax.sub", "tokenlabel_jax.sub.y"}
  assert find_cycle(graph) is None


def test_no_import_circle():
  graph = import_graph()
  assert len(graph) > 20 and "tokenlabel_jax.labeling" in graph
  cycle = find_cycle(graph)
  assert cycle is None, "import circle: " + " -> ".join(cycle)
