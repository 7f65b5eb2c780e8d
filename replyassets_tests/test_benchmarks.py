"""Benchmarks cannot rot: every script in benchmarks/ runs in its ``--small`` mode (tiny sizes,
the same code paths and correctness assertions, never a check on time) and ends with one JSON
line that says which CPU it ran on.

The scripts are discovered by glob, so a new benchmark without a small mode fails here.
Files whose name starts with ``_`` are helpers shared by the scripts, not benchmarks.
Each run gets its own data dir, DuckDB file and DAGSTER_HOME under ``tmp_path``, no network
(``HF_HUB_OFFLINE``), and must leave the repository's working tree as it found it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_"))

# over ~30 s in small mode on a 2-core machine: model loading (lingua, MiniLM and its export,
# the tiny Qwen3, the static model distilled for the dedup cascade: 2-3.5 minutes once per
# models folder, then about 50 s) or two `dg dev` instances
SLOW = {"backfill", "cascade", "e2e", "embed", "train", "validate"}
# each benchmark is its own xdist work unit (replyassets_tests/conftest.py): they share nothing
XDIST_EACH_TEST = True
TIMEOUT_S = {"backfill": 1500, "cascade": 900, "e2e": 1500, "embed": 1200, "train": 900, "validate": 600}


def _param(path: Path):
    name = path.stem
    marks = [pytest.mark.timeout(TIMEOUT_S.get(name, 300) + 120)]
    if name in SLOW:
        marks.append(pytest.mark.slow)
    return pytest.param(path, id=name, marks=marks)


def test_the_benchmarks_are_found():
    names = {p.stem for p in BENCHMARKS}
    assert {"dedup", "embed", "e2e", "backfill"} <= names, names
    assert SLOW <= names, f"SLOW names benchmarks that do not exist: {sorted(SLOW - names)}"


def _worktree_files() -> set[str]:
    """Untracked paths of the checkout, and the ignored ones under benchmarks/ (where a benchmark
    would write by mistake), as git lists them; bytecode caches aside. Ignored files under data/
    are not compared: under xdist another worker's test runs at the same time, and what it may
    leave there (a training slot's lock) is not this benchmark's."""
    out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=ROOT,
                         check=False, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:  # not a git checkout (an sdist): nothing to compare
        return set()
    return {line for line in out.stdout.splitlines()
            if line.startswith(("??", "!! benchmarks/"))
            and "__pycache__" not in line and not line.endswith(".pyc")}


@pytest.mark.slow  # over 3 s (make check is the fast tier)
@pytest.mark.parametrize("script", [_param(p) for p in BENCHMARKS])
def test_benchmark_small_mode(script: Path, tmp_path):
    data = tmp_path / "data"
    home = tmp_path / "dagster_home"
    data.mkdir()
    home.mkdir()
    env = {
        **os.environ,
        "REPLYASSETS_DATA_DIR": str(data),
        "REPLYASSETS_DATABASE": str(data / "replyassets.duckdb"),
        "REPLYASSETS_PROFILE": "local",
        "DAGSTER_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "TMPDIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    before = _worktree_files()
    proc = subprocess.run([sys.executable, str(script), "--small"], cwd=tmp_path, env=env, check=False,
                          capture_output=True, text=True, timeout=TIMEOUT_S.get(script.stem, 300))
    tail = f"\n--- stdout (tail)\n{proc.stdout[-3000:]}\n--- stderr (tail)\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"{script.name} --small exited {proc.returncode}{tail}"
    lines = proc.stdout.strip().splitlines()
    assert lines, f"{script.name} --small printed nothing{tail}"
    figures = json.loads(lines[-1])
    assert isinstance(figures, dict), f"the last line is not a JSON object{tail}"
    cpu = figures.get("cpu")
    assert isinstance(cpu, dict) and cpu.get("model") and isinstance(cpu.get("flags"), dict), \
        f"no CPU in the JSON line{tail}"
    assert {"avx2", "avx512f", "amx_bf16", "avx512_vnni"} <= set(cpu["flags"]), cpu
    if script.stem in ("embed", "dedup", "e2e", "cascade"):
        auto = figures.get("embedding_auto")
        assert isinstance(auto, dict) and auto.get("precision") in ("fp32", "bf16", "int8"), \
            f"no embedding precision picked by auto: {auto!r}{tail}"
    assert figures.get("small") is True, f"the JSON line does not say it ran the small mode{tail}"
    written = _worktree_files() - before
    assert not written, f"the benchmark wrote into the checkout: {sorted(written)}"


SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512_vnni avx512_bf16 avx_vnni amx_bf16 amx_tile amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2
"""


def test_cpu_info_reads_the_model_and_the_flags(tmp_path):
    from replyassets.core.cpu import cpu_info

    f = tmp_path / "cpuinfo"
    f.write_text(SAPPHIRE_RAPIDS)
    info = cpu_info(f)
    assert info["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert all(info["flags"].values()), info["flags"]  # the first processor's flags, every one present
    assert info["avx512"] and info["amx"] and info["vnni"]
    f.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx avx2 fma\n")
    info = cpu_info(f)
    assert info["model"] == "AMD EPYC" and info["flags"]["avx2"] is True
    assert not any(v for k, v in info["flags"].items() if k != "avx2")
    assert (info["avx512"], info["amx"], info["vnni"]) == (False, False, False)
    missing = cpu_info(tmp_path / "absent")  # not Linux: flags unknown, not "absent"
    assert missing["model"] and set(missing["flags"].values()) == {None} and missing["amx"] is None
