"""A pipeline in temp folders driven through subprocesses (``run_pipeline``), with SIGKILL.

Everything a run needs travels in environment variables, so several processes can share one
project (one DAGSTER_HOME, one DuckDB file) as a backfill's runs would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from replyassets_tests.reliability.hostile import write_replay_project

ROOT = Path(__file__).resolve().parents[2]

# Small enough to run in seconds on 2 cores; large enough that every check has data.
SMALL_SETTINGS = {
    "curation": {"min_pairs": 20, "target_pairs": 100, "max_pairs": 200, "min_unique_tweets": 5,
                 "min_unique_authors": 10},
    "preference": {"min_train_pairs": 1},  # 16 tweets: a few pairs, scaled like the curation sizes
    "training": {"max_steps": 4, "eval_steps": 2},
    "evaluation": {"bootstrap_resamples": 200},
}


@dataclass
class Proc:
    popen: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    seen: dict[str, float] = field(default_factory=dict)
    markers: tuple[str, ...] = ()
    started: float = field(default_factory=time.monotonic)

    def _pump(self) -> None:
        for raw in self.popen.stdout:  # type: ignore[union-attr]
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            for m in self.markers:
                if m in line and m not in self.seen:
                    self.seen[m] = time.monotonic()

    def wait_marker(self, marker: str, timeout: float = 300) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.seen:
                return True
            if self.popen.poll() is not None:
                time.sleep(0.2)
                return marker in self.seen
            time.sleep(0.02)
        return False

    def kill_group(self) -> bool:
        """SIGKILL the whole process group (the run and any training subprocess). True when it
        was still running."""
        alive = self.popen.poll() is None
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=60)
        return alive

    def wait(self, timeout: float = 600) -> int:
        rc = self.popen.wait(timeout=timeout)
        self._thread.join(timeout=10)
        return rc

    @property
    def output(self) -> str:
        return "".join(self.lines)


class Pipeline:
    def __init__(self, root: Path, queries: dict[str, list[Any]], extra_env: dict[str, str] | None = None,
                 settings: dict | None = None) -> None:
        self.root = root
        self.home = root / "dagster_home"
        self.data = root / "data"
        self.home.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        (self.home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        self.queries_file = write_replay_project(root / "replay", queries)
        self.sample = root / "replay" / "sample"
        self.database = self.data / "replyassets.duckdb"
        cfg = {**(settings or SMALL_SETTINGS), "paths": {"sample_dir": str(self.sample)}}
        (root / "settings.yaml").write_text(yaml.safe_dump(cfg))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("REPLYASSETS_", "DAGSTER_", "PYTEST_"))},
            "DAGSTER_HOME": str(self.home),
            "REPLYASSETS_PROFILE": "local",
            "REPLYASSETS_DATABASE": str(self.database),
            "REPLYASSETS_DATA_DIR": str(self.data),
            "REPLYASSETS_QUERIES": str(self.queries_file),
            "REPLYASSETS_SETTINGS": str(root / "settings.yaml"),
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
            **(extra_env or {}),
        }
        self.partitions = list(queries)
        self._python(
            "import dagster as dg; i = dg.DagsterInstance.get(); "
            f"i.add_dynamic_partitions('query', {self.partitions!r}); "
            "i.add_dynamic_partitions('experiment', ['default'])"
        )

    def _python(self, code: str) -> None:
        subprocess.run([sys.executable, "-c", code], env=self.env, check=True, capture_output=True, timeout=120)

    def start(self, select: list[str], partition: str | None = None, *, refresh: bool = False,
              apify_url: str | None = None, markers: tuple[str, ...] = ()) -> Proc:
        cmd = [sys.executable, "-m", "replyassets_tests.reliability.run_pipeline", "--select", ",".join(select),
               "--sample", str(self.sample)]
        if partition:
            cmd += ["--partition", partition]
        if refresh:
            cmd += ["--refresh"]
        if apify_url:
            cmd += ["--apify-url", apify_url]
        popen = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        proc = Proc(popen, markers=markers)
        proc._thread = threading.Thread(target=proc._pump, daemon=True)
        proc._thread.start()
        return proc

    def run(self, select: list[str], partition: str | None = None, **kw) -> Proc:
        proc = self.start(select, partition, **kw)
        rc = proc.wait()
        assert rc == 0 and "RESULT ok" in proc.output, proc.output[-4000:]
        return proc


def step_start_marker(step: str) -> str:
    return f'Started execution of step "{step}"'


def processes_mentioning(text: str) -> list[int]:
    """Live pids whose command line or environment mentions ``text`` (orphan detection)."""
    out = []
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cmd = (pid_dir / "cmdline").read_bytes()
            env = (pid_dir / "environ").read_bytes()
            stat = (pid_dir / "stat").read_text()
        except OSError:
            continue
        if stat.split(") ", 1)[-1].startswith("Z"):
            continue
        if text.encode() in cmd or text.encode() in env:
            out.append(int(pid_dir.name))
    return out
