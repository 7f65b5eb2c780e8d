"""Code versions derived from the code an asset runs and the settings it reads."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from replyassets.core import code_version as cv
from replyassets.settings import load_settings


@pytest.fixture
def fakepkg(tmp_path, monkeypatch):
    """A throwaway package ``cvpkg`` (a ``defs`` wiring module, logic, a helper) on sys.path."""
    root = tmp_path / "cvpkg"
    (root / "defs").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "defs" / "__init__.py").write_text("")
    files = {
        "logic.py": "from cvpkg import helper\n\nLIMIT = 3\n\ndef run(x):\n    return helper.twice(x) + LIMIT\n",
        "helper.py": "def twice(x):\n    return 2 * x\n",
        "unrelated.py": "VALUE = 1\n",
        "defs/common.py": "SHARED = 1\n",
        "defs/stage.py": "from cvpkg.logic import run\nfrom cvpkg.defs.common import SHARED\n",
    }
    for rel, text in files.items():
        (root / rel).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()

    def write(rel: str, text: str) -> None:
        (root / rel).write_text(text)
        cv._parsed.cache_clear()

    yield write
    cv._parsed.cache_clear()
    for name in [m for m in sys.modules if m == "cvpkg" or m.startswith("cvpkg.")]:
        del sys.modules[name]


def test_closure_follows_imports_but_not_other_wiring(fakepkg):
    closure = cv.module_closure(["cvpkg.defs.stage"])
    assert "cvpkg.logic" in closure and "cvpkg.helper" in closure  # transitively
    assert "cvpkg.defs.common" not in closure  # shared wiring is not the stage's logic
    assert "cvpkg.unrelated" not in closure


def test_finding_a_module_imports_nothing(fakepkg):
    """``from cvpkg.logic import run`` names a function: resolving it must not import cvpkg.logic
    (importlib's find_spec would, and that put torch into every process loading the definitions)."""
    assert cv._module_file("cvpkg.logic").endswith("logic.py")
    assert cv._module_file("cvpkg.defs").endswith("__init__.py")
    assert cv._module_file("cvpkg.logic.run") is None
    assert cv.module_closure(["cvpkg.defs.stage"])
    assert not [m for m in sys.modules if m.startswith("cvpkg.")]


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_loading_the_definitions_imports_no_heavy_library():
    """Every Dagster run and step process loads the definitions: the ML libraries load on use."""
    heavy = ("torch", "transformers", "peft", "trl", "anthropic", "scipy", "sklearn", "openvino",
             "sentence_transformers", "bitsandbytes", "model2vec", "skeletoken")
    code = ("import sys, replyassets.definitions; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip() == "", f"loading the definitions imported {out.stdout.strip()}"


def test_version_ignores_comments_and_docstrings_but_not_logic(fakepkg):
    before = cv.code_version(["cvpkg.defs.stage"])
    fakepkg("helper.py", '"""Helpers."""\n\n# doubles x\ndef twice(x):\n    """Twice."""\n    return 2 * x\n')
    assert cv.code_version(["cvpkg.defs.stage"]) == before
    fakepkg("helper.py", "def twice(x):\n    return 3 * x\n")  # a logic change two imports away
    changed = cv.code_version(["cvpkg.defs.stage"])
    assert changed != before
    fakepkg("unrelated.py", "VALUE = 2\n")
    fakepkg("defs/common.py", "SHARED = 2\n")
    assert cv.code_version(["cvpkg.defs.stage"]) == changed


def test_version_follows_the_settings_read_and_only_those():
    base = load_settings("local")
    other_dedup = base.model_copy(update={"dedup": base.dedup.model_copy(update={"similarity_threshold": 0.85})})
    paths = ("validation", "collection.reply_max_likes")
    assert cv.code_version(["replyassets.core.validate"], base, paths) == \
        cv.code_version(["replyassets.core.validate"], other_dedup, paths)
    assert cv.code_version(["replyassets.core.dedup"], base, ("dedup.similarity_threshold",)) != \
        cv.code_version(["replyassets.core.dedup"], other_dedup, ("dedup.similarity_threshold",))


def test_bad_names_are_errors():
    with pytest.raises(ValueError, match="no 'dedup.nope'"):
        cv.code_version(["replyassets.core.dedup"], load_settings("local"), ("dedup.nope",))
    with pytest.raises(ValueError, match="not a module"):
        cv.code_version(["replyassets.core.no_such_module"])


def test_every_asset_declares_a_derived_code_version():
    from replyassets.definitions import defs

    graph = defs.resolve_asset_graph()
    versions = {}
    for key in graph.materializable_asset_keys:
        version = graph.get(key).code_version
        assert version and len(version) == 16 and version.isalnum(), (key, version)
        versions[key.to_user_string()] = version
    assert versions["raw_tweets"] == versions["raw_tweet_rejections"]  # one multi-asset
    assert versions["preference_pairs"] == versions["preference_kto"]  # one multi-asset
    twins = ("raw_tweet_rejections", "preference_kto")
    assert len({v for k, v in versions.items() if k not in twins}) == len(versions) - len(twins)


def test_the_parse_cache_is_content_addressed_and_never_stale(fakepkg, tmp_path, monkeypatch):
    """Every process that loads the definitions reads each module's normalized tree from the
    cache instead of parsing it again; an edit is a new key (never an old answer), a corrupt
    entry is parsed again and rewritten, and an unwritable cache folder only costs the parse."""
    monkeypatch.setenv(cv.CACHE_ENV, str(tmp_path / "cache"))
    cv._parsed.cache_clear()
    first = cv.code_version(["cvpkg.logic"])
    entries = sorted((tmp_path / "cache").rglob("*.json"))
    assert len(entries) == 2, entries  # cvpkg.logic and cvpkg.helper
    assert not list((tmp_path / "cache").rglob("*.tmp"))

    cv._parsed.cache_clear()
    assert cv.code_version(["cvpkg.logic"]) == first  # read back from the entries

    fakepkg("helper.py", "def twice(x):\n    return 3 * x\n")  # a new content is a new key
    changed = cv.code_version(["cvpkg.logic"])
    assert changed != first
    assert len(sorted((tmp_path / "cache").rglob("*.json"))) == 3

    for entry in (tmp_path / "cache").rglob("*.json"):
        entry.write_text("{not json")
    cv._parsed.cache_clear()
    assert cv.code_version(["cvpkg.logic"]) == changed
    rewritten = [e for e in (tmp_path / "cache").rglob("*.json") if e.read_text().startswith('{"dump"')]
    assert len(rewritten) == 2  # the two entries read again (the old helper's is not asked for)

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv(cv.CACHE_ENV, str(blocked))
    cv._parsed.cache_clear()
    assert cv.code_version(["cvpkg.logic"]) == changed


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_a_cached_version_equals_a_parsed_one_for_every_asset_module(tmp_path, monkeypatch):
    """The cache changes no version: every module of the package, through an empty cache and then
    through the entries it wrote, gives the same versions as parsing without any cache."""
    import replyassets.definitions  # noqa: F401  (loads every module the assets name)

    modules = sorted(m for m in sys.modules if m.startswith("replyassets.") and cv._module_file(m))
    monkeypatch.setenv(cv.CACHE_ENV, str(tmp_path / "cache"))
    cv._parsed.cache_clear()
    filled = {m: cv.code_version([m]) for m in modules}
    cv._parsed.cache_clear()
    read = {m: cv.code_version([m]) for m in modules}
    blocked = tmp_path / "blocked"  # a file where the folder should be: nothing cached, all parsed
    blocked.write_text("")
    monkeypatch.setenv(cv.CACHE_ENV, str(blocked))
    cv._parsed.cache_clear()
    parsed = {m: cv.code_version([m]) for m in modules}
    cv._parsed.cache_clear()
    assert filled == read == parsed
    assert len(modules) > 40
