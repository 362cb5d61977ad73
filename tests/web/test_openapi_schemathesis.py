"""The REST API keeps the promises of its OpenAPI schema (issue 8 §2): schemathesis generates
requests for every operation from the published schema and runs all its checks (no server
error, every status documented, bodies and headers as described, valid input accepted,
invalid input refused, auth enforced) against the app in-process over a real SQLite store,
authenticated with a real personal API token of an administrator.

Bounded for CI: a few examples per operation (the slow lane; well under a minute).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from ctctsync.api.ratelimit import clear_registry
from ctctsync.control import services as svc
from ctctsync.control.plane import ControlPlane
from ctctsync.control.settings import ControlSettings
from ctctsync.web.api import create_api_app, openapi_document

MAX_EXAMPLES = 8
"""Generated cases per operation and phase: enough to reach every constraint's edges."""

CLOSED_PORT = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str], Path]]:
    """The REST API over a fresh store; an administrator's token; a folder for warehouses."""
    clear_registry()
    root = tmp_path_factory.mktemp("schemathesis")
    cfg = ControlSettings(
        data_dir=root / "data",
        cc_base_url=CLOSED_PORT,  # credential checks fail fast: nothing listens
        workers=0,
        secret_key="schemathesis-session-secret-" + "x" * 40,
    )
    plane = ControlPlane(cfg)
    with plane.session() as db:
        admin = svc.create_user(db, "admin@example.com", "correct horse battery", is_admin=True)
        _token, plaintext = svc.create_api_token(db, admin, "schemathesis")
    SERVED.target = create_api_app(plane)
    yield SERVED.target, {"Authorization": f"Bearer {plaintext}"}, root
    plane.close()
    clear_registry()


STORE_FACTS = {
    "POST /api/v1/integrations": "the name is taken",
    "PUT /api/v1/integrations/{integration_id}/credentials": "Constant Contact refuses them",
    "POST /api/v1/integrations/{integration_id}/tables/{table}/resync": "not a selected table",
    "POST /api/v1/oauth/complete": "no authorization was started with this state",
    "PUT /api/v1/warehouse": "dlt knows no such destination, or it needs credentials",
    "POST /api/v1/warehouse/test": "the warehouse does not answer",
    "POST /api/v1/users": "the email is taken",
    "POST /api/v1/notifications/channels": (
        "e-mail needs the server's SMTP setting; the target must be an address or URL of the kind"
    ),
}
"""Operations that may refuse well-formed input with 422 for a fact no schema can state (what
the store or a remote holds); every other operation must accept all schema-valid input."""

CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "base-url": "http://testserver",
        "operations": [
            {
                "include-name": name,
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "401", "403", "404", "409", "422"]
                    }
                },
            }
            for name in STORE_FACTS
        ],
    }
)


class ServedApp:
    """The ASGI app the schema's requests go to (its checks re-send some requests, e.g.
    without the token): the module's fixture plugs in the app over a fresh store."""

    target: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.target(scope, receive, send)


SERVED = ServedApp()

schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)
"""Every operation of the published schema."""
schema.app = SERVED

VALID_HISTORY_START = "2024-01-31"
"""The history start must not be in the future nor before 1996: a date range JSON Schema
cannot state; positive cases get a date inside it."""


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_keeps_the_schema(
    case: Any, served: tuple[Any, dict[str, str], Path]
) -> None:
    _app, auth, root = served
    body = case.body
    positive = case.meta is None or case.meta.generation.mode.is_positive
    if positive and isinstance(body, dict) and isinstance(body.get("path"), str):
        # A warehouse path is any file the admin names; keep the generated ones in the
        # test's folder (the name is irrelevant to what is checked).
        body["path"] = str(root / "warehouse.duckdb")
    if positive and isinstance(body, dict) and isinstance(body.get("history_start"), str):
        body["history_start"] = VALID_HISTORY_START
    case.call_and_validate(headers=auth)
