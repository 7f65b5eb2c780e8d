"""Each asset's code version names the settings it reads (``settings_paths``), a hand-kept list.
This guard reads the code: from every asset's compute function, it follows the functions it calls
(in its own module and in the ``replyassets`` modules it imports from, transitively) and
collects every read of a settings section through the loaded settings (``s = settings()``,
``get_settings()``, ``self.settings``... any name bound to one of those calls): ``s.collection``
(the whole section, e.g. handed to a core function) or ``s.dedup.similarity_threshold`` (one
value). Each read must be covered by a declared path (the same path or a section above it).

Only the sections that change what an asset computes count: ``paths`` and ``storage`` say where
things live, and ``profile`` selects the resources (each one's own settings are read through
the sections)."""

from __future__ import annotations

import ast
import importlib.util
from functools import cache

import pytest

from replyassets.settings import Settings

DEFS = ["collect", "validate", "dedupe", "curate", "preference", "train", "evaluate", "leaderboard", "champion"]
SECTIONS = set(Settings.model_fields) - {"paths", "storage", "profile"}
SETTINGS_CALLS = {"settings", "get_settings", "load_settings"}


@cache
def _module(name: str) -> ast.Module:
    spec = importlib.util.find_spec(name)
    with open(spec.origin, encoding="utf-8") as fh:
        return ast.parse(fh.read())


def _functions(module: str) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in _module(module).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _imported(module: str) -> dict[str, str]:
    """local name -> module it was imported from (``from replyassets... import name``, at the top
    or inside a function)."""
    out = {}
    for node in ast.walk(_module(module)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("replyassets"):
            for alias in node.names:
                out[alias.asname or alias.name] = node.module
    return out


def _is_settings_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SETTINGS_CALLS


def _path_of(node: ast.AST, env: dict[str, str]) -> str | None:
    """The settings path an expression stands for ("" = the whole settings), or None."""
    chain = []
    while isinstance(node, ast.Attribute):
        chain.append(node.attr)
        node = node.value
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        return _path_of(node.values[0], env)   # `settings or Default()`: the settings handed in
    if _is_settings_call(node):
        path = ""
    elif isinstance(node, ast.Name) and node.id in env:
        path = env[node.id]
    else:
        return None
    for attr in reversed(chain):
        model = Settings()
        for part in filter(None, path.split(".")):
            model = getattr(model, part)
        if not hasattr(type(model), "model_fields") or attr not in type(model).model_fields:
            return path          # a method or property of the model: it reads all of it
        path = f"{path}.{attr}".lstrip(".")
    return path


def _callee(call: ast.Call, module: str) -> tuple[str, ast.FunctionDef] | None:
    if not isinstance(call.func, ast.Name):
        return None
    name = call.func.id
    if name in _functions(module):
        return module, _functions(module)[name]
    src = _imported(module).get(name)
    if src and importlib.util.find_spec(src) is not None and name in _functions(src):
        return src, _functions(src)[name]
    return None


def _reads(module: str, fn: ast.AST, env: dict[str, str], seen: set) -> set[str]:
    """Settings paths ``fn`` reads: attribute chains on the settings (a settings call, a name
    assigned one, or a parameter that was handed a part of them), followed into the functions
    it hands them to; a part used any other way (handed to code this guard cannot follow, or
    iterated, dumped...) counts as read whole."""
    key = (module, getattr(fn, "name", ""), tuple(sorted(env.items())))
    if key in seen:
        return set()
    seen.add(key)
    env = dict(env)
    for n in ast.walk(fn):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            path = _path_of(n.value, env)
            if path is not None:
                env[n.targets[0].id] = path
    parents = {child: node for node in ast.walk(fn) for child in ast.iter_child_nodes(node)}
    found: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            target = _callee(node, module)
            if target is not None:
                cmod, cfn = target
                params = [a.arg for a in cfn.args.posonlyargs + cfn.args.args + cfn.args.kwonlyargs]
                bound = {}
                for i, arg in enumerate(node.args):
                    path = _path_of(arg, env)
                    if path is not None and i < len(params):
                        bound[params[i]] = path
                for kw in node.keywords:
                    path = _path_of(kw.value, env)
                    if path is not None and kw.arg in params:
                        bound[kw.arg] = path
                found |= _reads(cmod, cfn, bound, seen)
            continue
        path = _path_of(node, env)
        if path is None or isinstance(parents.get(node), ast.Attribute):
            continue        # not the settings, or the start of a longer chain (seen on its own)
        parent = parents.get(node)
        if isinstance(parent, ast.Call) and node in parent.args + [k.value for k in parent.keywords] \
                and _callee(parent, module) is not None:
            continue        # handed to a function followed above
        if isinstance(parent, ast.BoolOp) and _path_of(parent, env) is not None:
            parent = parents.get(parent)     # `x = settings or Default()`: as `x = settings`
        if isinstance(parent, ast.Assign):
            continue        # bound to a name: its uses are what count
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            continue
        if path.split(".")[0] in SECTIONS:   # the whole settings ("") only ever gets dotted into
            found.add(path)
    return found


def settings_read(module: str, function: str) -> set[str]:
    return _reads(module, _functions(module)[function], {}, set())


def _declared(module: str, value: ast.AST) -> tuple[str, ...]:
    """The settings_paths of a ``code_version=`` value: a derived_code_version call, or a name
    assigned one at module level."""
    if isinstance(value, ast.Name):
        for node in _module(module).body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == value.id for t in node.targets):
                value = node.value
                break
    assert isinstance(value, ast.Call) and getattr(value.func, "id", None) == "derived_code_version", ast.dump(value)
    for kw in value.keywords:
        if kw.arg == "settings_paths":
            return tuple(ast.literal_eval(kw.value))
    return ()


def assets_with_versions():
    out = []
    for short in DEFS:
        module = f"replyassets.defs.{short}"
        for fn in _functions(module).values():
            for dec in fn.decorator_list:
                if isinstance(dec, ast.Call) and getattr(dec.func, "attr", None) in {"asset", "multi_asset"}:
                    versions = [kw.value for kw in dec.keywords if kw.arg == "code_version"]
                    specs = [kw.value for kw in dec.keywords if kw.arg == "outs"]
                    if not versions and specs:   # a multi_asset: the outs' code versions
                        versions = [kw.value for n in ast.walk(specs[0]) if isinstance(n, ast.Call)
                                    for kw in n.keywords if kw.arg == "code_version"]
                    for v in versions[:1]:
                        out.append((module, fn.name, _declared(module, v)))
    return out


def covered(read: str, declared: tuple[str, ...]) -> bool:
    return any(read == d or read.startswith(d + ".") for d in declared)


ASSETS = assets_with_versions()
# Reads that do not change what the asset computes, each with why. Every entry must still be a
# read the code makes and does not declare (test below), so none outlives its reason.
NOT_AN_INPUT = {
    ("eval_report", "training"): "replyassets.experiments checks every recipe of the experiments file "
                                 "against the training settings (a bad recipe fails loading); only the "
                                 "experiment's evaluation settings reach the report",
    ("leaderboard", "training"): "the same: the gate order judges each experiment by its evaluation settings "
                                 "(defs/experiments.evaluation_settings_for loads the experiments file)",
    ("champion", "training"): "the same: the gate judges each experiment by its evaluation settings "
                              "(defs/experiments.evaluation_settings_for loads the experiments file)",
}


def test_every_asset_module_was_found():
    names = {fn for _, fn, _ in ASSETS}
    assert {"raw_tweets", "validated_pairs", "deduped_pairs", "curated_set", "base_model", "lora_adapter",
            "eval_report", "leaderboard"} <= names, names


@pytest.mark.slow  # over 3 s (make check is the fast tier)
@pytest.mark.parametrize(("module", "function", "declared"), ASSETS, ids=[a[1] for a in ASSETS])
def test_declared_settings_cover_what_the_code_reads(module, function, declared):
    reads = settings_read(module, function)
    exempt = {path for (asset, path) in NOT_AN_INPUT if asset == function}
    missing = {r for r in reads if not covered(r, declared) and r not in exempt}
    assert not missing, f"{function} reads settings it does not declare"
    for path in exempt:
        assert path in reads and not covered(path, declared), f"{function}: the exemption of {path!r} is stale"


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_the_guard_follows_helpers_and_the_parts_handed_to_them():
    """base_model reads the collection settings only through sample_texts() and the core
    collect_partition it imports; curated_set hands the collection settings to curate(), which
    reads five of them."""
    base = settings_read("replyassets.defs.train", "base_model")
    assert "collection" in base and "collection.tweet_min_likes" in base   # read whole, then each one
    curated = settings_read("replyassets.defs.curate", "curated_set")
    assert "collection.reply_max_likes" in curated and "collection" not in curated
    assert not covered("collection", ("training.base_model",))
    assert covered("dedup.similarity_threshold", ("dedup",)) and not covered("dedupe", ("dedup",))
