"""Live regions say so (issue 12, accessibility): every element of every template that is
announced as it changes -- a status, an alert, a log, a polled fragment -- carries an
explicit ``aria-live``. A static check, so a new template cannot slip by; the browser test
(``test_setup_edges.py``) checks the same on the rendered pages it visits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ctctsync.web.templating import TEMPLATES_DIR

TAG = re.compile(r"<[a-z][^>]*>", re.S)
LIVE = re.compile(r'role="(status|alert|log)"|data-poll=')

TEMPLATES = sorted(TEMPLATES_DIR.rglob("*.html"))


def test_templates_are_found() -> None:
    assert len(TEMPLATES) > 20


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(TEMPLATES_DIR)))
def test_every_live_region_has_aria_live(path: Path) -> None:
    html = path.read_text()
    missing = [
        tag for tag in TAG.findall(html) if LIVE.search(tag) and "aria-live=" not in tag
    ]
    assert missing == []
