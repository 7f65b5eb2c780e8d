"""Values flow through the lineage (issue 22, item 1).

* No asset or asset check, nor any defs function it calls, reads another asset's
  materialization (or check result) from the Dagster instance: what a decision used reaches it as
  an input, so the UI's lineage is the whole story and staleness sees it. The scan starts from
  every function decorated as an asset, multi-asset or asset check in ``replyassets/defs/`` and
  follows calls to functions defined there; sensors, schedules and ops are not roots (observing
  sources and keeping the snapshots adapters were trained on is what they are for), and the demo
  and CLI live outside ``defs``.
* The defs modules import no private name from one another, and their import graph has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import replyassets.defs

DEFS = Path(replyassets.defs.__file__).parent
# Instance queries of materializations, observations and check results.
INSTANCE_READS = {
    "fetch_materializations", "fetch_observations", "get_latest_materialization_event",
    "get_latest_materialization_events", "get_event_records", "get_asset_records",
    "get_latest_asset_check_execution_by_key", "get_latest_data_version", "event_log_storage",
    "get_materialized_partitions", "get_latest_materialization_code_versions",
}
# defs helpers that wrap such a query
READ_HELPERS = {"latest_materialization"}
ASSET_DECORATORS = {"asset", "multi_asset", "asset_check", "multi_asset_check", "graph_asset"}


def _decorator_name(node: ast.expr) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def _modules(root: Path = DEFS) -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(encoding="utf-8"), filename=str(p)) for p in sorted(root.glob("*.py"))}


def instance_reads(modules: dict[str, ast.Module]) -> list[str]:
    """``module.function: what`` for every instance read reachable from an asset or check."""
    functions: dict[str, list[tuple[str, ast.FunctionDef]]] = {}
    roots: list[tuple[str, ast.FunctionDef]] = []
    for mod, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                functions.setdefault(node.name, []).append((mod, node))
                if any(_decorator_name(d) in ASSET_DECORATORS for d in node.decorator_list):
                    roots.append((mod, node))
    found, seen, todo = [], set(), list(roots)
    while todo:
        mod, fn = todo.pop()
        if (mod, fn.name, fn.lineno) in seen:
            continue
        seen.add((mod, fn.name, fn.lineno))
        for node in ast.walk(fn):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if name in INSTANCE_READS or name in READ_HELPERS:
                found.append(f"{mod}.{fn.name} (line {node.lineno}): {name}")
            elif isinstance(node, ast.Call):
                called = _decorator_name(node)
                todo.extend(functions.get(called, []))
    return sorted(set(found))


def test_no_asset_reads_another_assets_materialization_from_the_instance():
    assert instance_reads(_modules()) == []


def test_the_scan_finds_an_instance_read_behind_a_helper(tmp_path):
    """The scan can fail: an asset that calls a helper that asks the instance is reported, and a
    sensor doing the same is not (it is not asset code)."""
    (tmp_path / "a.py").write_text(
        "import dagster as dg\n"
        "def _helper(instance):\n"
        "    return instance.fetch_materializations(dg.AssetKey('x'), limit=1)\n"
        "@dg.asset\n"
        "def thing(context):\n"
        "    return _helper(context.instance)\n"
        "@dg.sensor(job_name='j')\n"
        "def watch(context):\n"
        "    return context.instance.get_latest_materialization_event(dg.AssetKey('x'))\n"
    )
    (tmp_path / "b.py").write_text(
        "import dagster as dg\n"
        "@dg.asset_check(asset='thing')\n"
        "def looks(context):\n"
        "    return context.instance.event_log_storage.get_latest_asset_check_execution_by_key([])\n"
    )
    found = instance_reads(_modules(tmp_path))
    assert [f.split(":")[0] for f in found] == ["a._helper (line 3)", "b.looks (line 4)", "b.looks (line 4)"]


def _defs_imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """``(defs module, imported names)`` for every import of a sibling defs module, at any depth."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("replyassets.defs."):
            out.append((node.module.split(".")[2], [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name.split(".")[2], []) for a in node.names if a.name.startswith("replyassets.defs.")]
    return out


def test_defs_modules_import_no_private_name_and_have_no_import_cycle():
    modules = _modules()
    graph = {mod: set() for mod in modules}
    private = []
    for mod, tree in modules.items():
        for target, names in _defs_imports(tree):
            graph[mod].add(target)
            private += [f"{mod} imports {target}.{n}" for n in names if n.startswith("_")]
    assert private == []
    # depth-first search for a cycle
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt] if nxt in path else [*path, nxt])
            elif nxt in graph and not state.get(nxt):
                visit(nxt, [*path, nxt])
        state[node] = 2

    for mod in sorted(graph):
        if not state.get(mod):
            visit(mod, [mod])
    assert cycles == []


def test_models_reach_their_consumers_as_inputs():
    """The base model, the adapter and the evaluations are inputs of what uses them (the lineage
    shows them), not dependencies read behind Dagster's back."""
    import dagster as dg

    from replyassets.definitions import defs

    graph = defs.resolve_asset_graph()

    def inputs(key: str) -> set[str]:
        node = graph.get(dg.AssetKey(key))
        return {k.to_user_string() for k in node.parent_keys}

    assert {"curated_set", "base_model", "preference_pairs"} <= inputs("lora_adapter")
    assert {"lora_adapter", "base_model", "curated_set"} <= inputs("eval_report")
    assert {"eval_report", "lora_adapter"} <= inputs("champion")
    assert "leaderboard" not in inputs("champion")  # the decision reads nothing downstream of it
    assert {"champion", "eval_report"} <= inputs("leaderboard")
