"""Code versions derived from what an asset actually runs (no Dagster here).

An asset's code version is a hash of

* the code it runs: the asset's own module, any extra modules it names (the scorers its
  resources build, the training program its launcher starts) and, transitively, every
  ``replyassets`` module those import. Modules are hashed as their syntax tree without
  docstrings, so comments, docstrings and formatting do not change a version, while any
  change to what the code does does;
* the settings it reads, named as dotted paths into the loaded settings
  (``"validation"``, ``"collection.reply_max_likes"``): their values for the active profile.

Dagster compares an asset's code version with the one recorded by its latest materialization
and marks it stale ("Unsynced" in the UI) when they differ: editing a threshold in a profile
file or changing the logic makes exactly the assets that read it stale, and ``make demo``
recomputes them (see ``replyassets/demo.py``).

The closure leaves out ``replyassets.settings`` (the values that matter enter through the
named settings paths) and the Dagster wiring modules under ``replyassets.defs`` other than
the ones named (shared helpers and resource definitions), so editing one asset's wiring
does not mark every other asset stale.

Parsing and normalizing the closure (about 80 modules) is most of the time it takes to load the
definitions, and every process that loads them (a run worker, each step, the code server, the
daemon) did it again. The normalized tree and the import list of a file are therefore kept in a
content-addressed cache (``REPLYASSETS_CACHE_DIR``, default ``$XDG_CACHE_HOME/replyassets`` or
``~/.cache/replyassets``): an entry is keyed by the file's bytes, this module's own source and
the Python version, so it can never be stale; a cache that cannot be written is just not used.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

_EXCLUDED = ("replyassets.settings",)
_WIRING = ".defs."


def _package_dir(package: str) -> str | None:
    try:
        spec = importlib.util.find_spec(package)  # a top-level package: imports nothing of it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return next(iter(spec.submodule_search_locations))


def _module_file(name: str) -> str | None:
    """The source file of module ``name``, found on disk without importing anything.

    ``importlib.util.find_spec("a.b.c")`` imports ``a.b``: for a name like
    ``replyassets.training.callbacks.stage_callbacks`` (a function imported from a module) that
    would import torch and transformers into every process that loads the definitions.
    """
    parts = name.split(".")
    root = _package_dir(parts[0])
    if root is None:
        return None
    base = os.path.join(root, *parts[1:])
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


CACHE_ENV = "REPLYASSETS_CACHE_DIR"


def cache_dir() -> str:
    """Where the parsed-module cache lives (a per-user cache folder, never the checkout)."""
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "replyassets")
    return os.path.join(base, "code-versions")


@cache
def _algorithm_key() -> bytes:
    """This module's own source and the Python version (the syntax-tree dump format): part of
    every cache key, so a change to the normalization below never reads an old entry."""
    with open(__file__, "rb") as fh:
        own = fh.read()
    return hashlib.sha256(own + repr(sys.version_info[:2]).encode()).digest()


def _analyse(source: bytes, path: str, package: str) -> tuple[str, list[str], list[list[str]]]:
    """(normalized dump, modules imported with ``import``, ``from M import a, b`` as [M, a, b])."""
    tree = ast.parse(source, filename=path)
    direct: list[str] = []
    froms: list[list[str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            direct += [a.name for a in node.names if a.name.split(".")[0] == package]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == package:
            froms.append([node.module, *(alias.name for alias in node.names)])
    _strip_docstrings(tree)
    return ast.dump(tree, annotate_fields=False, include_attributes=False), direct, froms


def _cached_analysis(source: bytes, path: str, package: str) -> tuple[str, list[str], list[list[str]]]:
    key = hashlib.sha256(_algorithm_key() + package.encode() + b"\0" + source).hexdigest()
    folder = cache_dir()
    entry = os.path.join(folder, key[:2], key + ".json")
    try:
        with open(entry, encoding="utf-8") as fh:
            data = json.load(fh)
        return data["dump"], data["direct"], data["froms"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    dump, direct, froms = _analyse(source, path, package)
    tmp = None
    try:  # written whole or not at all: a reader never sees half an entry
        os.makedirs(os.path.dirname(entry), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(entry), suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"dump": dump, "direct": direct, "froms": froms}, fh)
        os.replace(tmp, entry)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)
    return dump, direct, froms


@cache
def _parsed(name: str) -> tuple[str, tuple[str, ...]]:
    """(normalized syntax-tree dump, modules of the same top-level package imported) of one module."""
    package = name.split(".")[0]
    path = _module_file(name)
    if path is None:
        raise ValueError(f"code_version: {name!r} is not a module of this installation")
    with open(path, "rb") as fh:
        source = fh.read()
    dump, direct, froms = _cached_analysis(source, path, package)
    imports = list(direct)
    for module, *names in froms:
        imports.append(module)
        for alias in names:  # `from replyassets.core import stats` imports a module
            candidate = f"{module}.{alias}"
            if _module_file(candidate) is not None:
                imports.append(candidate)
    return dump, tuple(sorted(set(imports)))


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]


def module_closure(roots: Iterable[str]) -> list[str]:
    """The named modules and every module of their package they import, transitively (sorted).

    Modules inside a ``defs`` folder are followed only when named (they are Dagster wiring).
    """
    roots = list(roots)
    named = set(roots)
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for dep in _parsed(name)[1]:
            if dep in seen or dep in _EXCLUDED or _module_file(dep) is None:
                continue
            if _WIRING in f".{dep}." and dep not in named:
                continue
            if "." not in dep:  # the package itself
                continue
            todo.append(dep)
    return sorted(seen)


def settings_values(settings: Any, paths: Iterable[str]) -> dict[str, Any]:
    """The values at dotted ``paths`` of a pydantic settings object, JSON-ready."""
    out: dict[str, Any] = {}
    for path in paths:
        value: Any = settings
        for part in path.split("."):
            if not hasattr(value, part):
                raise ValueError(f"code_version: settings have no {path!r}")
            value = getattr(value, part)
        out[path] = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
    return out


def code_version(modules: Iterable[str], settings: Any = None, settings_paths: Iterable[str] = ()) -> str:
    """A short, stable version string for the code in ``modules`` (closure) and the settings read."""
    digest = hashlib.sha256()
    for name in module_closure(modules):
        digest.update(name.encode() + b"\0" + _parsed(name)[0].encode() + b"\0")
    values = settings_values(settings, settings_paths) if settings is not None else {}
    digest.update(json.dumps(values, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def describe(modules: Iterable[str], settings_paths: Iterable[str] = ()) -> Mapping[str, Any]:
    """What a code version covers (shown in the asset's metadata)."""
    return {"modules": module_closure(modules), "settings": list(settings_paths)}
