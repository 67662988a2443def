"""The layers of ../shared/STYLE.md, checked on the source: no import cycle, no upward import.

Walks the AST of every module in asa_jax/, input_pipeline/, configs/, train.py and
eval.py, imports inside functions included (they run too, only later), and fails on an
import cycle between modules or on an import of a module in a higher layer (issue 17).
"""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ("asa_jax", "input_pipeline", "configs", "train.py", "eval.py")

# Lowest first; a module may import its own layer or a lower one. A module belongs to
# the longest prefix named here.
LAYERS = (
    # Shared helpers with no project imports above them.
    ("asa_jax", "asa_jax.atomic", "asa_jax.logs", "asa_jax.numba_cache",
     "asa_jax.config_specs", "asa_jax.ablations", "asa_jax.performance_score",
     "asa_jax.host_memory"),
    ("asa_jax.features",),
    ("input_pipeline",),
    ("asa_jax.models", "asa_jax.losses", "asa_jax.systems", "asa_jax.baselines"),
    ("asa_jax.train", "asa_jax.evaluation"),
    ("asa_jax.assess", "asa_jax.experiments"),
    ("configs", "train", "eval"),
)


def _module_files() -> dict[str, str]:
  """Dotted module name -> file path, for every module under SOURCES."""
  files = {}
  for source in SOURCES:
    path = os.path.join(ROOT, source)
    if source.endswith(".py"):
      files[source[:-3]] = path
      continue
    for folder, _, names in os.walk(path):
      for name in names:
        if name.endswith(".py"):
          rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3]
          parts = rel.split(os.sep)
          if parts[-1] == "__init__":
            parts = parts[:-1]
          files[".".join(parts)] = os.path.join(folder, name)
  return files


def _imports(module: str, path: str, modules: set[str]) -> set[str]:
  """The project modules that `module` imports anywhere in its file."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(parts + ([node.module] if node.module else []))
      for alias in node.names:
        name = f"{base}.{alias.name}"
        found.add(name if name in modules else base)
  return {name for name in found if name in modules}


def _layer(module: str) -> int:
  best, layer = "", None
  for index, prefixes in enumerate(LAYERS):
    for prefix in prefixes:
      if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
        best, layer = prefix, index
  assert layer is not None, f"{module} is in no layer of LAYERS"
  return layer


def _graph() -> dict[str, set[str]]:
  files = _module_files()
  return {module: _imports(module, path, set(files)) for module, path in files.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components with more than one module (Tarjan)."""
  index, low, stack, on_stack, out = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for nxt in sorted(graph[node]):
      if nxt not in index:
        visit(nxt)
        low[node] = min(low[node], low[nxt])
      elif nxt in on_stack:
        low[node] = min(low[node], index[nxt])
    if low[node] == index[node]:
      component = []
      while True:
        top = stack.pop()
        on_stack.discard(top)
        component.append(top)
        if top == node:
          break
      if len(component) > 1 or node in graph[node]:
        out.append(sorted(component))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return out


def test_every_module_has_a_layer():
  for module in _graph():
    _layer(module)


def test_the_walk_sees_imports_inside_functions(tmp_path):
  path = tmp_path / "mod.py"
  path.write_text("import os\n"
                  "def f():\n"
                  "  from pkg import sub\n"
                  "  from pkg.other import name\n"
                  "  from . import sibling\n")
  modules = {"pkg", "pkg.sub", "pkg.other", "pkg.sibling", "pkg.mod"}
  assert _imports("pkg.mod", str(path), modules) == {"pkg.sub", "pkg.other",
                                                     "pkg.sibling"}


def test_no_import_cycle():
  assert _cycles(_graph()) == []


def test_no_import_runs_up_a_layer():
  upward = sorted(f"{module} -> {dep}"
                  for module, deps in _graph().items() for dep in deps
                  if _layer(dep) > _layer(module))
  assert upward == []


def test_layers_follow_the_table_longest_prefix_first():
  order = ["asa_jax.atomic", "asa_jax.features.audio", "input_pipeline.corpora.demo",
           "asa_jax.baselines.score", "asa_jax.evaluation.run", "asa_jax.assess.cli",
           "eval"]
  assert [_layer(m) for m in order] == sorted(_layer(m) for m in order)
  assert len({_layer(m) for m in order}) == len(order)
  assert _layer("asa_jax.models.cnnsa") == _layer("asa_jax.systems.base")
  assert _layer("asa_jax.train.loop") == _layer("asa_jax.evaluation.scoring")


def test_the_cycle_finder_finds_a_cycle():
  graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
  assert _cycles(graph) == [["a", "b", "c"]]


def test_rule_based_baselines_import_without_jax():
  # A meta path finder that refuses jax (and everything under it), so any import of jax,
  # however indirect, fails the import of the baselines.
  code = (
      "import sys\n"
      "class _NoJax:\n"
      "  def find_spec(self, name, path=None, target=None):\n"
      "    if name == 'jax' or name.startswith(('jax.', 'jaxlib', 'flax', 'optax')):\n"
      "      raise ImportError('jax is blocked: ' + name)\n"
      "sys.meta_path.insert(0, _NoJax())\n"
      "import asa_jax.baselines.score\n"
      "assert 'jax' not in sys.modules\n"
      "print('ok')\n")
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": ROOT})
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == "ok"


# A system's module is named after the system in both asa_jax/models/ (its Flax
# module) and asa_jax/systems/ (its registry entry, imported by name).
SHARED_BY_DESIGN = ("asa_jax.models", "asa_jax.systems")
def test_no_two_modules_share_a_name():
  by_name: dict[str, list[str]] = {}
  for module, path in _module_files().items():
    if path.endswith("__init__.py") or not module.startswith(("asa_jax.",
                                                               "input_pipeline.")):
      continue
    package, _, name = module.rpartition(".")
    by_name.setdefault(name, []).append(package)
  shared = {name for name, packages in by_name.items()
            if len(packages) > 1 and sorted(packages) != sorted(SHARED_BY_DESIGN)}
  assert shared == set()
