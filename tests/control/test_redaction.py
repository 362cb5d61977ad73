"""Secrets never reach run logs or run errors."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.models import User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.worker import RunLogHandler
from ctctsync.errors import Redactor

from .helpers import connected

TOKEN = "3f2a9c1e-7b4d-4e8f-9a6b-1c2d3e4f5a6b"


@pytest.mark.parametrize(
    ("text", "secret_part"),
    [
        pytest.param("token is s3cr3t-value ok", "s3cr3t-value", id="known-secret"),
        pytest.param("GET /v2/contacts?api_key=abcdefgh&limit=500", "abcdefgh", id="api-key-param"),
        pytest.param("Authorization: Bearer zzzzzzzz", "zzzzzzzz", id="bearer"),
        pytest.param(f"token {TOKEN} rejected", TOKEN, id="uuid-token"),
        pytest.param("key Ab3dEf6hIj9kLm2nOp5qRs8tUv", "Ab3dEf6hIj9kLm2nOp5qRs8tUv", id="random"),
        pytest.param("postgresql://loader:pw123@db:5432/x", "pw123", id="url-password"),
    ],
)
def test_scrubbed(text: str, secret_part: str) -> None:
    out = Redactor(["s3cr3t-value"])(text)
    assert secret_part not in out and "***" in out


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("run 185b1e6bebd64566988c7a5646b0fe8a succeeded", id="run-id"),
        pytest.param("contacts: 260 rows in 1 pages, 1 API calls, 0.9 s", id="counts"),
        pytest.param("email_campaign_summary_extra_long_name", id="identifiers"),
    ],
)
def test_ordinary_text_kept(text: str) -> None:
    assert Redactor()(text) == text


def test_run_log_handler_redacts(plane: ControlPlane, db: Session, alice: User) -> None:
    integ = connected(db, alice)
    run = svc.run_now(db, integ, alice)
    db.commit()
    logger = logging.getLogger("ctctsync.tests.redaction")
    handler = RunLogHandler(plane, run.id, Redactor(["key-acme", TOKEN]))
    logger.addHandler(handler)
    try:
        logger.warning("calling with key-acme and %s", TOKEN)
        try:
            raise RuntimeError(f"boom access_token={TOKEN}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = svc.run_logs(db, run)
    assert [line.level for line in lines] == ["WARNING", "ERROR"]
    text = "\n".join(line.message for line in lines)
    assert "key-acme" not in text and TOKEN not in text
    assert "Traceback" in text and "RuntimeError" in text
