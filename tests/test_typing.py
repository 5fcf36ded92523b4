"""The type information shipped with the package: py.typed and the _core.pyi
stub (regenerate it with tools/gen_stub.py) must describe the compiled module."""
import ast
import os

import annvil
from annvil import _core

PKG = os.path.dirname(annvil.__file__)


def _stub():
    with open(os.path.join(PKG, "_core.pyi")) as f:
        return ast.parse(f.read())


def _top_level_names(tree):
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):  # the exception classes, defined in annvil
            names.update(a.asname or a.name for a in node.names)
    return names


def _classes(tree):
    return {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}


def test_py_typed_is_shipped():
    assert os.path.isfile(os.path.join(PKG, "py.typed"))


def test_stub_lists_every_public_name_of_core():
    names = _top_level_names(_stub())
    public = {n for n in dir(_core) if not n.startswith("_")}
    missing = sorted(public - names)
    assert not missing, f"_core.pyi is stale (run tools/gen_stub.py): missing {missing}"
    compiled = [getattr(_core, n) for n in public]
    classes = {c.__name__ for c in compiled if isinstance(c, type) and c.__module__ == "annvil._core"}
    assert classes <= set(_classes(_stub())), "every class of _core is a class in the stub"


def test_reexported_core_names_resolve_in_stub():
    # what `annvil` takes from _core (annvil.IndexHNSWFlat is _core.IndexHNSWFlat) must be in the stub
    names = _top_level_names(_stub())
    reexported = {n for n in dir(annvil) if not n.startswith("_") and getattr(_core, n, None) is getattr(annvil, n)}
    assert reexported and not sorted(reexported - names)


def test_stub_has_constructors_and_python_methods():
    classes = _classes(_stub())
    inits = [f for f in classes["IndexHNSWFlat"].body if isinstance(f, ast.FunctionDef) and f.name == "__init__"]
    assert inits and any(len(f.args.args) > 1 for f in inits), "IndexHNSWFlat(d, M, ...) is in the stub"
    index_methods = {f.name: f for f in classes["Index"].body if isinstance(f, ast.FunctionDef)}
    for name in ("search", "add", "train", "range_search", "reconstruct_n", "remove_ids"):
        assert name in index_methods, name
    assert ast.unparse(index_methods["search"].returns) == "tuple[np.ndarray, np.ndarray]"
    binary = {f.name for f in classes["IndexBinary"].body if isinstance(f, ast.FunctionDef)}
    assert {"search", "add", "train"} <= binary
