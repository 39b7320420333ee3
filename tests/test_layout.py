"""The package's layering: no import cycles, no import of a higher layer, focused files, re-exports
only in ``__init__.py`` (see docs/architecture.md)."""

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "gasgnn"

#: Layers, bottom to top. A module may import its own layer and the ones below, never one above.
LAYERS = [
    {"gasgnn.utils", "gasgnn.errors", "gasgnn.registry", "gasgnn.metrics", "gasgnn.stats", "gasgnn.kernels",
     "gasgnn.distributed"},
    {"gasgnn.space", "gasgnn.data"},
    {"gasgnn.genotype"},
    {"gasgnn.models"},
    {"gasgnn.ggm", "gasgnn.latency"},
    {"gasgnn.runner"},
    {"gasgnn.search", "gasgnn.train"},
    {"gasgnn.viz"},
    {"gasgnn.testing", "gasgnn.commands", "gasgnn.cli", "gasgnn.__main__", "gasgnn"},
]


def modules(root: Path = PKG) -> dict[str, Path]:
    """Module name -> file, for every module and package ``__init__`` under ``root``."""
    out = {}
    for p in sorted(root.rglob("*.py")):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The gasgnn modules ``name`` imports anywhere in its file (inside functions and TYPE_CHECKING too)."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import submodule` imports the submodule; `from pkg import name` the package
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in mods and t != name}
    return found


def layer_of(name: str) -> int:
    """The layer of a module: that of its longest listed prefix."""
    best, level = -1, None
    for i, group in enumerate(LAYERS):
        for prefix in group:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), i
    assert level is not None, f"{name} is in no layer: add it to LAYERS and docs/architecture.md"
    return level


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(m, p, mods) for m, p in mods.items()}


def find_cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
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

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert find_cycles(graph()) == []


def test_cycle_finder_sees_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_of_a_higher_layer():
    bad = [f"{m} (layer {layer_of(m)}) imports {t} (layer {layer_of(t)})"
           for m, ts in graph().items() for t in sorted(ts) if layer_of(t) > layer_of(m)]
    assert bad == []


def test_every_subpackage_has_a_layer_and_a_public_surface():
    for sub in sorted(p for p in PKG.iterdir() if p.is_dir() and not p.name.startswith("__")):
        layer_of(f"gasgnn.{sub.name}")
        init = sub / "__init__.py"
        assert init.is_file(), f"{sub} has no __init__.py"
        if sub.name != "commands":
            assert "__all__" in init.read_text(), f"{init} declares no __all__ (its public surface)"


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_is_focused_and_reexports_only_in_init(name):
    path = modules()[name]
    text = path.read_text()
    assert len(text.splitlines()) <= 500, f"{path} has {len(text.splitlines())} lines: split it by concept"
    if path.name != "__init__.py":
        assert not re.search(r"noqa: *(E402|F401)", text), f"{path}: re-exports live only in __init__.py"


def test_layering_checker_flags_an_upward_import(tmp_path):
    pkg = tmp_path / "gasgnn"
    (pkg / "space").mkdir(parents=True)
    (pkg / "search").mkdir()
    for d in (pkg, pkg / "space", pkg / "search"):
        (d / "__init__.py").write_text("")
    (pkg / "search" / "searcher.py").write_text("x = 1\n")
    (pkg / "space" / "ops.py").write_text("def f():\n    from gasgnn.search.searcher import x\n")
    mods = modules(pkg)
    assert imports("gasgnn.space.ops", mods["gasgnn.space.ops"], mods) == {"gasgnn.search.searcher"}
    assert layer_of("gasgnn.search.searcher") > layer_of("gasgnn.space.ops")


def test_search_and_train_are_peers():
    # Shared loop machinery lives in gasgnn.runner, below both; neither imports the other.
    bad = [f"{m} imports {t}" for m, ts in graph().items() for t in sorted(ts)
           for a, b in (("gasgnn.train", "gasgnn.search"), ("gasgnn.search", "gasgnn.train"))
           if (m == a or m.startswith(a + ".")) and (t == b or t.startswith(b + "."))]
    assert bad == []


def _run_file_names() -> set[str]:
    from gasgnn.runner import RunDir

    return {v for k, v in vars(RunDir).items() if k.isupper() and isinstance(v, str) and "." in v}


#: Files of other artifacts that share a run file's name: a pretrained network's directory follows the Hugging
#: Face convention (config.json beside the weights) and keeps its genotype as genotype.json.
OTHER_ARTIFACTS = {"models/pretrained.py": {"config.json", "genotype.json"}}


def run_file_literals(root: Path = PKG) -> list[str]:
    """``file:line: 'name'`` for every string literal spelling a run file's name outside the RunDir module."""
    names, owner = _run_file_names(), root / "runner" / "rundir.py"
    out = []
    for p in sorted(root.rglob("*.py")):
        if p == owner:
            continue
        allowed = OTHER_ARTIFACTS.get(p.relative_to(root).as_posix(), set())
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names - allowed:
                out.append(f"{p.relative_to(root.parent)}:{node.lineno}: {node.value!r}")
    return out


def test_run_file_names_are_spelled_only_by_the_run_directory():
    assert run_file_literals() == []


def test_run_file_checker_sees_a_literal(tmp_path):
    pkg = tmp_path / "gasgnn"
    (pkg / "runner").mkdir(parents=True)
    (pkg / "runner" / "rundir.py").write_text("CHECKPOINT = 'checkpoint.pt'\n")
    (pkg / "search.py").write_text("def f(d):\n    return d / f\"{'checkpoint.pt'}\"\n")
    assert run_file_literals(pkg) == ["gasgnn/search.py:2: 'checkpoint.pt'"]
