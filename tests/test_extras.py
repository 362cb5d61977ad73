"""The ``server`` extra: the connector's verbs run without the web stack; the verbs that need
it say so in one line with exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Block the web stack in a fresh interpreter, as if `ctctsync[server]` were not installed.
BLOCK = "import sys\nfor m in ('fastapi', 'uvicorn'): sys.modules[m] = None\n"


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_connector_verbs_do_not_import_the_web_stack() -> None:
    done = _python(
        "import sys\n"
        "import ctctsync.cli.app, ctctsync.sync, ctctsync.state, ctctsync.warehouse\n"
        "import ctctsync.dlt  # the dlt source works on a plain install\n"
        "from ctctsync.cli.control import register\n"
        "web = ('fastapi', 'starlette', 'uvicorn', 'jinja2')\n"
        "print(sorted(m for m in web if m in sys.modules))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("verb", ["serve", "sandbox", "demo"])
def test_web_verbs_without_the_extra_exit_2_with_the_install_hint(verb: str) -> None:
    done = _python(
        BLOCK + f"sys.argv = ['ctctsync', {verb!r}]\nfrom ctctsync.cli import main\nmain()\n"
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'ctctsync[server]'" in done.stderr
    assert "fastapi" in done.stderr
    assert "Traceback" not in done.stderr
