"""The package as users get it: ``python -m build`` makes a wheel and an sdist that ``twine
check`` accepts; the wheel carries the web templates, static files and migrations; installed
in a fresh venv outside the checkout, ``ctctsync --version``, ``ctctsync demo --no-serve`` and
``ctctsync serve`` work from it alone, and ``tap-ctctsync`` is installed (slow lane: one
build, one install of ~20 s)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "ctctsync"
DATA_DIRS = ("web/templates", "web/static", "migrations")
"""The non-Python files the control plane needs at run time (pyproject package-data)."""


def _version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: none of the checkout's paths nor our settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CTCTSYNC_", "PYTHON", "VIRTUAL_ENV"))}
    return {**env, **extra}


def _run(args: list[str], cwd: Path, timeout: float = 300, **env: str) -> str:
    proc = subprocess.run(args, cwd=cwd, env=_clean_env(**env), capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"{args[:3]} exited {proc.returncode}:\n{proc.stdout[-3000:]}" \
                                 f"\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and sdist built from this checkout (build's own isolated environment)."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out)
    return out


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv outside the checkout with the wheel (and its server extra) installed at
    the pinned versions; yields its ``bin`` folder."""
    home = tmp_path_factory.mktemp("user")
    venv.create(home / "venv", with_pip=True)
    bin_dir = home / "venv" / "bin"
    wheel = next(dist.glob("*.whl"))
    _run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          "-c", str(ROOT / "constraints.txt"), f"{wheel}[server]"], cwd=home, timeout=600)
    yield bin_dir


def test_build_makes_a_wheel_and_sdist_twine_accepts(dist: Path) -> None:
    version = _version()
    wheel = dist / f"ctctsync-{version}-py3-none-any.whl"
    sdist = dist / f"ctctsync-{version}.tar.gz"
    assert wheel.exists() and sdist.exists(), sorted(p.name for p in dist.iterdir())
    _run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)], cwd=dist)


def test_the_wheel_carries_every_template_static_file_and_migration(dist: Path) -> None:
    names = set(zipfile.ZipFile(next(dist.glob("*.whl"))).namelist())
    wanted = {
        f"ctctsync/{path.relative_to(PACKAGE).as_posix()}"
        for folder in DATA_DIRS
        for path in (PACKAGE / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert len(wanted) > 30  # the walk found the folders
    assert not wanted - names, sorted(wanted - names)
    assert "ctctsync/py.typed" in names


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_installed_wheel_runs_version_demo_and_serve(installed: Path,
                                                     tmp_path: Path) -> None:
    ctctsync = str(installed / "ctctsync")
    where = _run([str(installed / "python"), "-c", "import ctctsync; print(ctctsync.__file__)"],
                 cwd=tmp_path)
    assert not Path(where.strip()).is_relative_to(ROOT)  # the venv's copy, not the checkout

    assert _run([ctctsync, "--version"], cwd=tmp_path).strip() == f"ctctsync {_version()}"

    # the Singer tap's own name (Meltano's executable) is installed too
    tap_config = tmp_path / "tap.json"
    tap_config.write_text('{"api_key": "client-id", "access_token": "token"}')
    catalog = json.loads(_run([str(installed / "tap-ctctsync"), "--config", str(tap_config),
                               "--discover"], cwd=tmp_path))
    assert "contacts" in [s["stream"] for s in catalog["streams"]]

    demo = _run([ctctsync, "demo", "--no-serve", "--contacts", "300"], cwd=tmp_path)
    assert "succeeded" in demo
    assert (tmp_path / "ctctsync-demo.duckdb").stat().st_size > 0

    port = _free_port()
    proc = subprocess.Popen(
        [ctctsync, "serve"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
        env=_clean_env(CTCTSYNC_DATA_DIR=str(tmp_path / "data"), CTCTSYNC_PORT=str(port),
                       CTCTSYNC_WORKERS="1"),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # until it listens
            try:
                page = httpx.get(f"{base}/login", timeout=2, follow_redirects=True)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        # the page renders from the wheel's templates, and its stylesheet from its static files
        assert page.status_code == 200 and "<html" in page.text.lower()
        css = httpx.get(f"{base}/static/app.css", timeout=5)
        assert css.status_code == 200 and css.text == (PACKAGE / "web/static/app.css").read_text()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert (tmp_path / "data" / "control.db").exists()  # migrated from the wheel's files
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


DLT_SCRIPT = """
import json, sys
import dlt
from ctctsync.dlt import constant_contact
from ctctsync.sandbox import Sandbox

sb = Sandbox(qps_limit=None, daily_limit=None).start()
try:
    source = constant_contact(api_key=sb.credentials.api_key, base_url=sb.base_url,
                              access_token=sb.credentials.v3_access_token)
    pipeline = dlt.pipeline("cc", destination=dlt.destinations.duckdb("w.duckdb"),
                            dataset_name="crm", pipelines_dir="pipelines")
    pipeline.run(source.with_resources("contacts", "contact_lists"))
    counts = pipeline.last_trace.last_normalize_info.row_counts
    print(json.dumps({"contacts": counts.get("contacts"), "lists": counts.get("contact_lists"),
                      "truth": [len(sb.truth("contacts")), len(sb.truth("contact_lists"))]}))
finally:
    sb.stop()
"""
"""A user's own dlt pipeline on the installed wheel, against a sandbox account (v3)."""


def test_installed_wheel_runs_the_dlt_source(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(DLT_SCRIPT, encoding="utf-8")
    out = _run([str(installed / "python"), "pipeline.py"], cwd=tmp_path)
    loaded = json.loads(out.strip().splitlines()[-1])
    assert [loaded["contacts"], loaded["lists"]] == loaded["truth"]
    assert loaded["contacts"] > 0
