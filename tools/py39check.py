"""Find what Python 3.9 cannot run in coreframe's sources, without a 3.9 interpreter.

    .venv/bin/python tools/py39check.py [PATH...]     (default: the whole tree)

requires-python is 3.9 (the system Python of Debian 11, RHEL 9, Amazon Linux 2023),
and 3.9 parses most 3.10+ code fine, then fails when it runs: ``zip(strict=)``,
``X | Y`` between types outside an annotation (isinstance, aliases), dataclass
``slots``/``kw_only``, names the stdlib only has from 3.10 (tomllib, typing.Self, ...),
``int.bit_count()``, ``match``. The test matrix (``nox``) runs the suite under 3.9 and
finds those too, but only where 3.9 is installed and only on the lines the tests
reach; this is the check every run of the suite makes (tests/test_py39.py).
Annotations count only in a module without ``from __future__ import annotations``
(which keeps them unevaluated). A line that runs only on a newer Python says so
with a ``# py39: ok`` comment. Prints
``FILE:LINE: what`` per finding; exits 1 if there is any.
"""

from __future__ import annotations

import ast
import os
import sys

ROOTS = ("coreframe", "plugins", "tests", "bench", "examples", "tools", "kernels", "fuzz",
         "mutation", "noxfile.py")
SKIP_DIRS = {".venv", ".nox", "build", "__pycache__", ".git"}

# Builtin and typing names: ``A | B`` between two of these (or None) is a type union,
# which 3.9 cannot evaluate at run time.
TYPE_NAMES = {"int", "str", "bytes", "bytearray", "memoryview", "float", "bool", "list",
              "tuple", "dict", "set", "frozenset", "type", "object", "complex", "Any",
              "Callable", "Iterable", "Iterator", "Sequence", "Mapping"}
NEW_MODULES = {"tomllib": "3.11"}
NEW_NAMES = {  # module -> {name: the Python that added it}
    "typing": {"Self": "3.11", "TypeAlias": "3.10", "ParamSpec": "3.10",
               "Concatenate": "3.10", "TypeGuard": "3.10", "Never": "3.11",
               "LiteralString": "3.11", "assert_never": "3.11", "reveal_type": "3.11",
               "NotRequired": "3.11", "Required": "3.11", "Unpack": "3.11",
               "TypeVarTuple": "3.11", "dataclass_transform": "3.11", "override": "3.12"},
    "itertools": {"pairwise": "3.10", "batched": "3.12"},
    "types": {"UnionType": "3.10", "NoneType": "3.10", "EllipsisType": "3.10"},
    "enum": {"StrEnum": "3.11", "verify": "3.11"},
    "datetime": {"UTC": "3.11"},
    "asyncio": {"TaskGroup": "3.11", "timeout": "3.11"},
}
NEW_ATTRS = {"bit_count": "int.bit_count() (3.10): use bin(x).count('1')",
             "file_digest": "hashlib.file_digest (3.11)"}
NEW_BUILTINS = {"aiter": "3.10", "anext": "3.10", "EncodingWarning": "3.10",
                "ExceptionGroup": "3.11", "BaseExceptionGroup": "3.11"}


def _is_type_operand(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return node.value is None
    if isinstance(node, ast.Name):
        return node.id in TYPE_NAMES
    if isinstance(node, ast.Subscript):
        return _is_type_operand(node.value)
    if isinstance(node, ast.Attribute):  # ctypes.Structure, cdata.Union, typing.Any
        return node.attr[:1].isupper() and not node.attr.isupper()
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _is_type_operand(node.left) or _is_type_operand(node.right)
    return False


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class Finder(ast.NodeVisitor):
    def __init__(self, path: str, lazy_annotations: bool) -> None:
        self.path = path
        self.lazy = lazy_annotations  # `from __future__ import annotations`
        self.found: list[tuple[int, str]] = []

    def add(self, node: ast.AST, what: str) -> None:
        self.found.append((getattr(node, "lineno", 0), what))

    # annotations stay strings under `from __future__ import annotations`: visited
    # only in a module without it, where 3.9 evaluates them
    def visit_arg(self, node: ast.arg) -> None:
        if not self.lazy and node.annotation is not None:
            self.visit(node.annotation)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for d in node.decorator_list:
            self.visit(d)
        self.visit(node.args)
        if not self.lazy and node.returns is not None:
            self.visit(node.returns)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 - ast.NodeVisitor's naming

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if not self.lazy:
            self.visit(node.annotation)
        if node.value is not None:
            self.visit(node.value)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):  # never runs
            for stmt in node.orelse:
                self.visit(stmt)
            return
        self.generic_visit(node)

    def visit_Match(self, node: ast.AST) -> None:
        self.add(node, "match statement (3.10)")

    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        if name == "zip" and any(k.arg == "strict" for k in node.keywords):
            self.add(node, "zip(..., strict=) (3.10): coreframe.runtime.compat.zip_strict")
        if name == "dataclass":
            for k in node.keywords:
                if k.arg in ("slots", "kw_only", "match_args"):
                    self.add(node, f"dataclass({k.arg}=) (3.10)")
        if name in NEW_ATTRS and isinstance(f, ast.Attribute):
            self.add(node, NEW_ATTRS[name])
        if isinstance(f, ast.Name) and f.id in NEW_BUILTINS:
            self.add(node, f"{f.id} ({NEW_BUILTINS[f.id]})")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.BitOr) and (
                _is_type_operand(node.left) and _is_type_operand(node.right)):
            self.add(node, "X | Y between types outside an annotation (3.10): "
                           "a tuple for isinstance, a string or Union for an alias")
            return
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in NEW_BUILTINS and isinstance(node.ctx, ast.Load):
            self.add(node, f"{node.id} ({NEW_BUILTINS[node.id]})")

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.name in NEW_MODULES:
                self.add(node, f"import {a.name} ({NEW_MODULES[a.name]}): guard it")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        new = NEW_NAMES.get(node.module or "", {})
        for a in node.names:
            if a.name in new:
                self.add(node, f"from {node.module} import {a.name} ({new[a.name]})")
        if node.module in NEW_MODULES:
            self.add(node, f"from {node.module} import ({NEW_MODULES[node.module]}): guard it")

    def visit_Try(self, node: ast.Try) -> None:
        # ``try: import tomllib`` / ``except ImportError:`` is how a module is guarded
        guarded = any(isinstance(h.type, ast.Name) and h.type.id in (
            "ImportError", "ModuleNotFoundError") for h in node.handlers)
        for stmt in node.body:
            if not (guarded and isinstance(stmt, (ast.Import, ast.ImportFrom))):
                self.visit(stmt)
        for part in (node.handlers, node.orelse, node.finalbody):
            for stmt in part:
                self.visit(stmt)


def _lazy_annotations(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
               and any(a.name == "annotations" for a in node.names) for node in tree.body)


def check_file(path: str) -> list[tuple[int, str]]:
    with open(path, encoding="utf-8") as f:
        src = f.read()
    try:
        tree = ast.parse(src, path)
    except SyntaxError as exc:
        return [(exc.lineno or 0, f"does not parse: {exc.msg}")]
    finder = Finder(path, _lazy_annotations(tree))
    finder.visit(tree)
    lines = src.splitlines()
    return sorted((n, what) for n, what in finder.found
                  if not (0 < n <= len(lines) and "# py39: ok" in lines[n - 1]))


def files(root: str, paths: list[str]) -> list[str]:
    out = []
    for p in paths or [os.path.join(root, r) for r in ROOTS]:
        if os.path.isfile(p):
            out.append(p)
            continue
        for dirpath, dirnames, names in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS
                                 and not d.startswith("."))
            out.extend(os.path.join(dirpath, n) for n in sorted(names) if n.endswith(".py"))
    return out


def main(argv: list[str]) -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bad = 0
    for path in files(root, argv):
        for line, what in check_file(path):
            print(f"{os.path.relpath(path, root)}:{line}: {what}")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
