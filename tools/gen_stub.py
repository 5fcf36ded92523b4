"""Regenerate python/annvil/_core.pyi, the type stub of the compiled module.

    PYTHONPATH=python python tools/gen_stub.py          # writes python/annvil/_core.pyi

pybind11-stubgen writes the classes, constructors and raw methods that the
bindings define.  python/annvil then attaches the Faiss-compatible methods
(search, add, train...) to those classes at import time; this script adds them
to the stub from their (annotated) Python definitions, so that IDEs and mypy
see `index.search(x, k) -> tuple[np.ndarray, np.ndarray]` as well.
tests/test_typing.py fails when the stub misses a name that _core exports.
"""
from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
import tempfile
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "python", "annvil", "_core.pyi")


EXCEPTIONS = """class AnnvilError(RuntimeError): ...
class InvalidArgumentError(AnnvilError, ValueError): ...
class InvalidTypeError(AnnvilError, TypeError): ...
class NotTrainedError(AnnvilError): ...
class IndexFileError(AnnvilError, ValueError): ...
"""


def _run_stubgen(tmp):
    subprocess.run([sys.executable, "-m", "pybind11_stubgen", "annvil._core", "-o", tmp,
                    "--numpy-array-remove-parameters", "--ignore-all-errors"], check=True)
    for rel in ("annvil/_core.pyi", "annvil/_core/__init__.pyi"):
        path = os.path.join(tmp, rel)
        if os.path.exists(path):
            with open(path) as f:
                return f.read()
    raise SystemExit("pybind11-stubgen wrote no annvil/_core stub")


def _annotation(a):
    if a is inspect.Parameter.empty:
        return None
    text = a if isinstance(a, str) else getattr(a, "__name__", repr(a))
    return text.replace("_core.", "").replace("_np.", "np.")


def _default(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return repr(v)
    return "..."


def _signature(fn):
    sig = inspect.signature(fn)
    parts, star_done = [], False
    for p in sig.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        name = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        star_done = star_done or p.kind is p.VAR_POSITIONAL
        ann = _annotation(p.annotation)
        text = name if ann is None or p.name == "self" else f"{name}: {ann}"
        if p.default is not inspect.Parameter.empty:
            text += f" = {_default(p.default)}" if ann else f"={_default(p.default)}"
        parts.append(text)
    ret = _annotation(sig.return_annotation) or "typing.Any"
    return f"({', '.join(parts)}) -> {ret}"


def _python_members(cls):
    """Stub lines for what python/annvil attached to a compiled class."""
    lines = []
    for name, value in sorted(vars(cls).items()):
        if name.startswith("_") and name not in ("__init__", "__reduce__", "__repr__", "__setattr__"):
            continue
        if isinstance(value, types.FunctionType):
            if name == "__init__":
                continue  # pybind11's overloads are in the stub already
            lines.append(f"    def {name}{_signature(value)}: ...")
        elif isinstance(value, property) and isinstance(value.fget, types.FunctionType):
            lines.append(f"    {name}: typing.Any")
    return lines


def _insert(stub, members):
    """Append members[cls] to the body of `class cls` (stub lines), skipping
    names the class body already defines."""
    tree = ast.parse(stub)
    lines = stub.split("\n")
    for node in sorted((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in members),
                       key=lambda n: -n.end_lineno):
        have = {getattr(b, "name", None) for b in node.body}
        have |= {t.id for b in node.body if isinstance(b, ast.AnnAssign) for t in [b.target]
                 if isinstance(t, ast.Name)}
        have |= {t.id for b in node.body if isinstance(b, ast.Assign) for t in b.targets if isinstance(t, ast.Name)}
        add = [ln for ln in members[node.name] if ln.split("(")[0].split(":")[0].split()[-1] not in have]
        lines[node.end_lineno:node.end_lineno] = add
    return "\n".join(lines)


def main():
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import annvil  # noqa: F401  (attaches the Python methods)
    from annvil import _core
    with tempfile.TemporaryDirectory() as tmp:
        stub = _run_stubgen(tmp)
    members = {}
    for name, cls in vars(_core).items():
        if isinstance(cls, type) and cls.__module__ == "annvil._core":
            got = _python_members(cls)
            if got:
                members[name] = got
    stub = _insert(stub, members)
    # constructors that python/annvil wraps (SearchParameters*: keep their object arguments
    # referenced) keep pybind11's signature in the docstring's first line only
    wrapped_init = (r'def __init__\(self, \*args, \*\*kwargs\):\n(\s+)"""\n'
                    r'\s+__init__\(self: [\w.]+(?:, )?(.*)\) -> None\n')
    stub = re.sub(wrapped_init,
                  lambda m: (f"def __init__(self{', ' if m.group(2) else ''}{m.group(2)}) -> None:\n"
                             f'{m.group(1)}"""\n'), stub)
    stub = stub.replace("annvil._core.", "")
    # the exception classes are created by the bindings (bind_errors.cpp) with module "annvil"
    stub = re.sub(r"from annvil import \w+Error\n", "", stub)
    stub = stub.replace("\nclass ", "\n" + EXCEPTIONS + "class ", 1)
    # pybind11 writes `params: SearchParameters = None` for nullable arguments
    stub = re.sub(r"(\w+): ((?!None\b)[\w.]+) = None\b", r"\1: \2 | None = None", stub)
    stub = stub.replace(") -> ...:", ") -> typing.Any:")
    # annotations written in python/annvil name the module's classes as _core.X (np as _np in __init__)
    stub = re.sub(r"(?<![\w.])_core\.", "", stub)
    stub = re.sub(r"(?<![\w.])_np\.", "np.", stub)
    doc = ('"""Type stub of annvil._core, the compiled module: generated by tools/gen_stub.py\n'
           '(pybind11-stubgen, plus the methods python/annvil attaches to the compiled classes).\n'
           'Do not edit by hand."""\n')
    if stub.startswith('"""'):
        stub = stub[stub.index('"""', 3) + 3:].lstrip("\n")
    extra = "import numpy as np\nfrom numpy.typing import ArrayLike\n"
    if "import typing\n" not in stub:
        extra = "import typing\n" + extra
    stub = stub.replace("from __future__ import annotations\n", "from __future__ import annotations\n" + extra, 1)
    ast.parse(stub)
    stub = doc + stub
    compile(stub, OUT, "exec", flags=0, dont_inherit=True)  # valid Python, __future__ import first
    with open(OUT, "w") as f:
        f.write(stub)
    print(f"wrote {OUT} ({stub.count(chr(10))} lines)")


if __name__ == "__main__":
    main()
