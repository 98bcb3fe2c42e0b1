"""The package's import graph: no module imports from a layer above it, and no cycles.

stats ← checks ← findings/summary ← runner ← cli, in full (imports inside functions count too):
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mlinvestigate"

LAYERS = [
    {"errors", "resources", "__version__"},
    {"stats", "display"},
    {"contract", "thresholds", "spec", "data", "engine", "model", "findings", "metrics"},
    {"checks"},
    {"plots", "widgets", "diagnosis", "attribution", "document", "summary", "export", "lab", "scenarios"},
    {"runner", "monitoring", "warm", "kernels"},  # monitoring runs investigations; warm imports for kernels
    {"cli", "__main__"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[str, set[str]]:
    """Module group → the package's groups it imports (static imports anywhere in the file)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.with_suffix("").relative_to(PACKAGE.parent).parts)
        package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[:len(package) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                if node.module is None or module == "mlinvestigate":
                    targets = [f"{module}.{a.name}" for a in node.names]
                else:
                    targets = [module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target.startswith("mlinvestigate") and _group(target) != _group(name):
                    edges[_group(name)].add(_group(target))
    return edges


def test_every_module_sits_in_a_layer():
    groups = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
              if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert groups - {"__init__"} <= set(LAYER), groups - set(LAYER)


def test_no_module_imports_from_a_layer_above_it():
    edges = _imports()
    upward = {(a, b) for a, bs in edges.items() if a != "__init__" for b in bs
              if b != "__init__" and LAYER[b] > LAYER[a]}
    assert not upward, upward


def test_no_import_cycles():
    edges = {a: {b for b in bs if b != "__init__"} for a, bs in _imports().items() if a != "__init__"}
    seen, stack = set(), []

    def visit(node):
        if node in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(node):] + [node]))
        if node in seen:
            return
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            visit(nxt)
        stack.pop()
        seen.add(node)

    for node in sorted(edges):
        visit(node)


# import name of each declared dependency; None: used without an import (the reason is given)
IMPORT_NAMES = {
    "jupyterlab": None,  # `mlinvestigate lab` starts it as `python -m jupyterlab`
    "ipykernel": None,  # the kernel every notebook runs in
    "scikit-learn": "sklearn", "pyyaml": "yaml", "beautifulsoup4": "bs4", "jupyter-client": "jupyter_client",
    "ipython": "IPython",
}


def test_declared_dependencies_are_the_ones_imported():
    """Every dependency in pyproject.toml is imported somewhere in the package (or its use is said)."""
    import re
    import tomllib

    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    source = "\n".join(p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))
    unused = []
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        if module is None:
            continue
        if not re.search(rf"^\s*(import|from) {module}\b", source, re.M):
            unused.append(name)
    assert not unused, unused


def test_imported_packages_are_declared():
    """Every third-party package the package imports is a declared dependency (or of an extra
    users install for a feature, such as ``spark``; not the tests' own)."""
    import re
    import sys
    import tomllib

    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    declared = set()
    extras = [r for name, reqs in project.get("optional-dependencies", {}).items() if name != "test" for r in reqs]
    for requirement in project["dependencies"] + extras:
        name = re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()
        declared.add(IMPORT_NAMES.get(name, name.replace("-", "_")))
    imported = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "mlinvestigate"}
    assert third_party <= declared, third_party - declared
