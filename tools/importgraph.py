"""Print coreframe's intra-package import graph, its cycles and cross-module private names.

    .venv/bin/python tools/importgraph.py [ROOT] [--edges] [--check]

Every ``import`` counts, also those inside functions (a lazy import still ties
two modules together), except those under ``if TYPE_CHECKING:`` (they never
run). ``from pkg import name`` is an edge to ``pkg.name`` when that is a module.
A cycle is a strongly connected component of more than one module. A private
name is ``from coreframe.x import _name`` or ``module._name`` on an imported
coreframe module (dunders aside). ``--check`` exits 1 if there is either
(tests/test_layout.py runs it); documented exceptions would go in ALLOWED.
"""

from __future__ import annotations

import ast
import os
import sys

# Edges allowed to close a circle, each a documented lazy import (docs/architecture.md
# says why). None is needed today: ObjectSpec.load imports the loader lazily, but the
# loader does not import the spec module back.
ALLOWED: set[tuple[str, str]] = set()


def modules(root: str, package: str = "coreframe") -> dict[str, str]:
    """Module name -> file, for every .py file of ``package`` under ``root``."""
    out = {}
    base = os.path.join(root, package)
    for dirpath, dirnames, files in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__pycache__")))
        for f in sorted(files):
            if not f.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), root)[:-3].split(os.sep)
            if rel[-1] == "__init__":
                rel = rel[:-1]
            out[".".join(rel)] = os.path.join(dirpath, f)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST):
    """Every node except what sits under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


class Module:
    def __init__(self, name: str, path: str, known: dict[str, str]) -> None:
        self.name = name
        self.is_package = path.endswith("__init__.py")
        self.imports: set[str] = set()
        self.private: list[str] = []
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        aliases: dict[str, str] = {}  # local name -> coreframe module it is bound to
        for node in _runtime_nodes(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in known or a.name.split(".")[0] == "coreframe":
                        target = self._closest(a.name, known)
                        if target:
                            self.imports.add(target)
                            if a.asname:
                                aliases[a.asname] = target
            elif isinstance(node, ast.ImportFrom):
                base = self._resolve(node)
                if base is None or not (base == "coreframe" or base.startswith("coreframe.")):
                    continue
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    if sub in known:
                        self.imports.add(sub)
                        aliases[a.asname or a.name] = sub
                        continue
                    target = self._closest(base, known)
                    if target:
                        self.imports.add(target)
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        self.private.append(f"{node.lineno}: from {base} import {a.name}")
        for node in _runtime_nodes(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                self.private.append(f"{node.lineno}: {aliases[node.value.id]}.{node.attr}")
        self.imports.discard(name)

    def _resolve(self, node: ast.ImportFrom) -> str | None:
        if node.level == 0:
            return node.module
        parts = self.name.split(".")
        if not self.is_package:
            parts = parts[:-1]
        if node.level > 1:
            parts = parts[: len(parts) - (node.level - 1)]
        return ".".join(parts + ([node.module] if node.module else []))

    @staticmethod
    def _closest(name: str, known: dict[str, str]) -> str | None:
        parts = name.split(".")
        while parts:
            if ".".join(parts) in known:
                return ".".join(parts)
            parts.pop()
        return None


def graph(root: str) -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    known = modules(root)
    mods = {n: Module(n, p, known) for n, p in known.items()}
    return {n: m.imports for n, m in mods.items()}, {n: m.private for n, m in mods.items()
                                                      if m.private}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if (v, w) in ALLOWED:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    root = args[0] if args else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    edges, private = graph(root)
    if "--edges" in argv:
        for mod in sorted(edges):
            print(f"{mod} -> {', '.join(sorted(edges[mod])) or '-'}")
    found = cycles(edges)
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} imports, "
          f"{len(found)} cycle(s), {sum(map(len, private.values()))} private name(s) "
          "used across modules")
    for comp in found:
        inner = sorted(f"{a} -> {b}" for a in comp for b in edges[a] & set(comp)
                       if (a, b) not in ALLOWED)
        print(f"cycle: {' <-> '.join(comp)}\n    " + "\n    ".join(inner))
    for mod in sorted(private):
        for where in private[mod]:
            print(f"private: {mod}:{where}")
    return 1 if "--check" in argv and (found or private) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
