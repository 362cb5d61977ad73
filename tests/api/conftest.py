"""Fixtures of the API-layer tests: the sandbox plugin and a fresh limiter registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ctctsync.api.ratelimit import clear_registry
from ctctsync.sandbox.testing import sandbox, sandbox_factory  # noqa: F401 -- fixtures


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    # Limiters are shared per API key for the whole process; sandboxes of one seed share a
    # key, so a quota spent in one test must not leak into the next.
    clear_registry()
    yield
    clear_registry()
