"""Exposure: the UI binds 127.0.0.1 by default and the README says how to put it behind
authentication before exposing it."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _ui_command() -> list[str]:
    """The command line `make ui` runs, as make itself expands it (dry run: nothing starts)."""
    if shutil.which("make") is None:  # read the recipe instead
        text = (ROOT / "Makefile").read_text()
        recipe = re.search(r"^ui:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
        assert recipe, "no ui target in the Makefile"
        line = recipe.group(1).strip().splitlines()[-1].replace("$(VENV)", ".venv")
        return shlex.split(line)
    out = subprocess.run(["make", "-n", "-W", "pyproject.toml", "-o", "install", "ui"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if re.search(r"(?:^|/)(?:dg|dagster) dev\b", ln)]
    assert lines, f"`make ui` does not start `dg dev`:\n{out.stdout}"
    return shlex.split(lines[-1])


def _option(argv: list[str], *names: str) -> str | None:
    for i, a in enumerate(argv):
        for n in names:
            if a == n and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def test_make_ui_binds_loopback_only():
    argv = _ui_command()
    host = _option(argv, "-h", "--host")
    assert host == "127.0.0.1", f"`make ui` must bind 127.0.0.1 explicitly, got {host!r}: {argv}"
    assert not any(a in ("0.0.0.0", "::", "[::]") for a in argv)


def test_no_config_exposes_the_webserver():
    """Nothing the project ships starts the *webserver* on all interfaces (the Docker image's
    gRPC code server is not the UI and lives inside the cluster network)."""
    offenders = []
    for path in [ROOT / "Makefile", ROOT / "workspace.yaml", ROOT / "dagster.yaml", *ROOT.glob("deploy/**/*"),
                 *ROOT.glob("*.yaml"), *ROOT.glob("Dockerfile*"), *ROOT.glob("scripts/*")]:
        if not path.is_file():
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if ("dagster-webserver" in line or "dagster dev" in line or "webserver" in line) and (
                "0.0.0.0" in line or "--host ::" in line
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_readme_explains_authentication_before_exposure():
    text = (ROOT / "README.md").read_text()
    low = text.lower()
    assert "127.0.0.1" in text
    assert "authentication" in low or "authenticat" in low
    assert re.search(r"reverse proxy|oauth2[- ]proxy|auth_basic|basic auth", low), \
        "the README must name a way to put the UI behind authentication"
    assert "tls" in low or "https" in low


@pytest.mark.slow
def test_dagster_dev_command_from_makefile_listens_on_loopback(tmp_path):
    """Start the webserver the way `make ui` configures it (host and port flags), on a free port,
    and check the listening socket is bound to 127.0.0.1 only."""
    import os
    import signal
    import socket
    import sys
    import time

    argv = _ui_command()
    host = _option(argv, "-h", "--host")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    webserver = Path(sys.executable).parent / "dagster-webserver"
    assert webserver.exists(), "dagster-webserver is not installed in this environment (a dependency)"
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [str(webserver), "-h", host, "-p", str(port), "-m", "replyassets.definitions"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        bound = None
        while time.monotonic() < deadline and bound is None:
            out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout if shutil.which("ss") else ""
            for line in out.splitlines():
                parts = line.split()
                if len(parts) >= 4 and parts[3].endswith(f":{port}"):
                    bound = parts[3].rsplit(":", 1)[0]
            if not shutil.which("ss"):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    bound = "127.0.0.1"
                except OSError:
                    pass
            if proc.poll() is not None:
                pytest.fail(f"the webserver exited with {proc.returncode}")
            time.sleep(0.5)
        assert bound == "127.0.0.1", bound
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
