"""The architecture's import rules, read from the source (docs/ARCHITECTURE.md):

- imports point one way: cli -> app -> engine / eval / train / weights -> models -> ops;
  io and data know no networks; ``errors`` is below everything;
- no private names imported across modules;
- no import cycles between modules (imports at module level; the lazy imports inside
  functions keep ``n3 --help`` fast and are checked by the direction rule only).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path


PACKAGE = Path(__file__).resolve().parent.parent / "n3cli"

# A package may import packages of a lower rank; among equal ranks the graph must be acyclic.
RANK = {"cli": 6, "__main__": 7, "app": 5, "engine": 4, "eval": 4, "train": 4, "weights": 4,
        "models": 3, "ops": 2, "io": 1, "data": 1, "errors": 0}


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _package(module: str) -> str:
    """``n3cli.engine.runner`` -> ``engine``; ``n3cli.errors`` -> ``errors``; ``n3cli`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _imports(path: Path, module_level_only: bool = False):
    """(imported module, imported names, node) for every ``n3cli`` import in the file."""
    tree = _tree(path)
    nodes = tree.body if module_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "n3cli":
            yield node.module, [a.name for a in node.names], node
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "n3cli":
                    yield a.name, [], node


def _resolve(module: str, name: str, modules: dict[str, Path]) -> str:
    """``from n3cli.engine import runner`` imports the module ``n3cli.engine.runner``."""
    return f"{module}.{name}" if f"{module}.{name}" in modules else module


def test_ranks_cover_every_package():
    packages = {_package(m) for m in _modules()} - {""}
    assert packages <= RANK.keys(), f"packages without a rank: {packages - RANK.keys()}"


def _direction_violations(modules: dict[str, Path]) -> list[str]:
    """Imports of a higher layer, root-package imports other than the version, and equal
    layers importing each other."""
    bad: list[str] = []
    edges: set[tuple[str, str]] = set()
    for mod, path in modules.items():
        src = _package(mod)
        if not src:
            continue  # the root package: lazy re-exports of the library API
        for target, names, node in _imports(path):
            for name in names or [""]:
                dst = _package(_resolve(target, name, modules) if name else target)
                if not dst:  # the root package: only its version string and location
                    if name and name != "__version__":
                        bad.append(f"{mod}:{node.lineno} imports {name} from n3cli")
                elif RANK[dst] > RANK[src]:
                    bad.append(f"{mod}:{node.lineno} ({src}) imports {target} ({dst}), a layer above")
                elif RANK[dst] == RANK[src] and dst != src:
                    edges.add((src, dst))
    return bad + [f"{a} and {b} import each other" for a, b in edges if (b, a) in edges and a < b]


def test_imports_point_one_way():
    bad = _direction_violations(_modules())
    assert not bad, "\n".join(bad)


def test_no_private_names_across_modules():
    modules, bad = _modules(), []
    for mod, path in modules.items():
        for target, names, node in _imports(path):
            for name in names:
                if name.startswith("_") and not name.startswith("__") \
                        and _resolve(target, name, modules) != mod:
                    bad.append(f"{mod}:{node.lineno} imports the private {target}.{name}")
    assert not bad, "\n".join(bad)


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` (module -> modules it imports), or ``[]``."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(m: str, stack: list[str]) -> list[str]:
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [m, n] if n in stack else [m, n]
            if n not in state and (found := visit(n, stack + [m])):
                return found
        state[m] = 2
        return []

    for m in sorted(graph):
        if m not in state and (found := visit(m, [])):
            return found
    return []


def test_no_import_cycles_at_module_level():
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for target, names, _node in _imports(path, module_level_only=True):
            for name in names or [""]:
                dst = _resolve(target, name, modules) if name else target
                if dst in modules and dst != mod:
                    graph[mod].add(dst)
    assert sum(map(len, graph.values())) > 100  # the walk found the imports
    cycle = _find_cycle(graph)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_the_direction_check_finds_violations(tmp_path):
    """The rule is not vacuous: planted upward and mutual imports are reported."""
    ops, app, evl, eng = (tmp_path / f"{n}.py" for n in ("ops", "app", "eval", "engine"))
    ops.write_text("def f():\n    from n3cli.app.batch import Denoiser\n")  # lazy, still upward
    app.write_text("from n3cli.ops import plan\n")  # downward: fine
    evl.write_text("from n3cli.engine import runner\n")
    eng.write_text("from n3cli.eval import protocol\n")
    bad = _direction_violations({"n3cli.ops.k": ops, "n3cli.app.j": app,
                                 "n3cli.eval.p": evl, "n3cli.engine.r": eng})
    assert len(bad) == 2 and "a layer above" in bad[0] and "import each other" in bad[1], bad
