"""The README stays true: config example, commands, and the test command CI runs."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from ctctsync.cli import app
from ctctsync.config import load_config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_config_example_is_valid(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", README, re.S)
    assert block is not None
    cfg_file = tmp_path / "ctctsync.toml"
    cfg_file.write_text(block.group(1), encoding="utf-8")
    cfg = load_config(cfg_file, environ={})
    assert cfg.integration == "marketing"
    assert cfg.tables["contact_lists"] is None
    assert "contacts" in cfg.tables


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/test" in ci
    assert "scripts/test" in README
    assert "scripts/demo" in README
    assert (ROOT / "scripts" / "demo").stat().st_mode & 0o111


def test_every_ctctsync_command_in_the_readme_exists() -> None:
    commands = set(re.findall(r"^ctctsync ([a-z-]+(?: [a-z-]+)?)", README, re.M))
    assert commands
    runner = CliRunner()
    for command in sorted(commands):
        res = runner.invoke(app, [*command.split(), "--help"])
        assert res.exit_code == 0, (command, res.output)
