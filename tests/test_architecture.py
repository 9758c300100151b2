"""The runtime's import graph: no cycles, and nothing in voxedge/ imports the build or benchmark code."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "voxedge"


def imports() -> dict:
    """module -> the voxedge modules (and foreign top-level packages) it imports."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name.split(".") if parts[-1] == "__init__" else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
                module = ".".join(p for p in (base, node.module) if p)
                targets |= {module} | {f"{module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
        modules[name] = targets
    return modules


def resolve(target: str, modules) -> str | None:
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def test_the_runtime_never_imports_export_or_benchmarks():
    upward = {(m, t) for m, ts in imports().items() for t in ts if t.split(".")[0] in ("export", "benchmarks")}
    assert not upward


def test_the_import_graph_has_no_cycles():
    modules = imports()
    graph = {m: {resolve(t, modules) for t in ts} - {None, m} for m, ts in modules.items()}
    # a package's __init__ re-exports its modules: edges into it do not make cycles through them
    graph = {m: {t for t in ts if not (PACKAGE.parent / t.replace(".", "/") / "__init__.py").is_file()}
             for m, ts in graph.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for module in graph:
        if module not in state:
            visit(module, [])
    assert not cycles, cycles
    assert len(graph) > 30  # the walk saw the whole package


def test_only_the_cluster_module_imports_ray():
    importers = {m for m, ts in imports().items() if any(t.split(".")[0] == "ray" for t in ts)}
    assert importers == {"voxedge.batch.cluster"}
