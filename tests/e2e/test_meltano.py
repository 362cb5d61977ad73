"""docs/meltano/meltano.yml under real Meltano (in its own venv): ``meltano install`` puts the
tap (from the wheel built from this checkout) and target-jsonl in their venvs, ``meltano run
tap-ctctsync target-jsonl`` discovers, applies the file's ``select`` rules and loads the
sandbox's v3 account; after changes, a second run starts from the STATE Meltano kept and
sends only the changes, with the v3 refresh token rotated in between (kept in the token
store the file configures). One test, ~1.5 minutes: slow lane."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from singer_tools import MELTANO, ROOT, clean_env, jsonl, merged, tool_venv
from v3_truth import V3Truth, assert_v3_records_match

from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.testing import v3_tokens_by_pkce
from ctctsync.tables import tables_for

SELECTED = ("contacts", "email_campaigns", "contact_lists", "contact_tracking")
"""The streams docs/meltano/meltano.yml selects (contacts without ``notes``)."""


def _meltano(bin_dir: Path, project: Path, *args: str, env: dict[str, str]
             ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(bin_dir / "meltano"), *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"meltano {args} exited {proc.returncode}:\n" \
                                 f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_the_docs_meltano_project_loads_the_account_then_only_changes(
        sandbox: Sandbox, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("*.whl"))
    meltano = tool_venv(tmp_path / "meltano-venv", MELTANO)

    project = tmp_path / "project"
    project.mkdir()
    text = (ROOT / "docs" / "meltano" / "meltano.yml").read_text()
    assert text.count("pip_url: ctctsync\n") == 1
    (project / "meltano.yml").write_text(text.replace("pip_url: ctctsync\n",
                                                      f"pip_url: {wheel}\n"))
    env = clean_env(MELTANO_SEND_ANONYMOUS_USAGE_STATS="false")
    env.pop("PYTHONPATH", None)
    _meltano(meltano, project, "install", env=env)

    tokens = v3_tokens_by_pkce(sandbox)
    env.update({
        "TAP_CTCTSYNC_API_KEY": sandbox.credentials.api_key,
        "TAP_CTCTSYNC_REFRESH_TOKEN": tokens["refresh_token"],
        "TAP_CTCTSYNC_BASE_URL": sandbox.base_url,
        "TAP_CTCTSYNC_QPS_LIMIT": "50",
    })
    log = _meltano(meltano, project, "run", "tap-ctctsync", "target-jsonl", env=env).stderr
    assert "contacts: full read (first run)" in log
    out = project / "output"
    assert sorted(p.stem for p in out.glob("*.jsonl")) == sorted(SELECTED)
    tables = tables_for("v3")
    first = {name: jsonl(out / f"{name}.jsonl") for name in SELECTED}
    truth = V3Truth(sandbox)
    for name in SELECTED:
        ignore = ("notes",) if name == "contacts" else ()
        assert assert_v3_records_match(truth, name, merged(tables[name], first[name]),
                                       ignore=ignore) == len(first[name])
    assert all("notes" not in r for r in first["contacts"])  # "!contacts.notes"

    state = json.loads(_meltano(meltano, project, "state", "get",
                                "dev:tap-ctctsync-to-target-jsonl", env=env).stdout)
    assert set(state["singer_state"]["bookmarks"]) == {"contacts", "email_campaigns",
                                                       "contact_tracking"}

    sandbox.account.advance(60)
    changed = sandbox.account.update_contacts(5)
    log = _meltano(meltano, project, "run", "tap-ctctsync", "target-jsonl", env=env).stderr
    assert "contacts: incremental read (bookmark)" in log
    both = {name: jsonl(out / f"{name}.jsonl") for name in SELECTED}
    assert len(both["contacts"]) - len(first["contacts"]) == len(changed)
    assert len(both["contact_tracking"]) == len(first["contact_tracking"])
    truth = V3Truth(sandbox)
    for name in SELECTED:
        ignore = ("notes",) if name == "contacts" else ()
        assert_v3_records_match(truth, name, merged(tables[name], both[name]), ignore=ignore)
    # the refresh token given was used once and rotated; the store keeps the new one
    assert (project / ".meltano" / "ctctsync-tokens.db").exists()

