"""One failure taxonomy: who must act when something goes wrong, and what follows from it.

Every failure ctctsync reports -- a classified API answer, a warehouse that cannot be used,
a record that cannot be stored, a cancellation -- has one :data:`FailureType`. The table
:data:`FAILURES` maps each type, once, to everything that depends on it: the status the run
ends with, whether the rest of the run is skipped, the CLI's exit code and the HTTP status
the REST API answers with. The CLI commands (``sync``, ``check``, ``integrations run
--wait``), the sync engine and the control plane all read this table instead of deciding
for themselves.

Exit codes (:class:`ExitCode`), the same for every command:

- 0 ``OK``: it worked.
- 1 ``FAILED``: the run (or check) failed; a retry later may help (``transient``), or it
  is a ctctsync or API bug (``system``).
- 2 ``CONFIG``: bad usage, input or configuration; a person must fix it first.
- 3 ``STOPPED``: the run stopped early but cleanly with its progress saved -- the daily
  API quota is spent (``partial``) or someone cancelled it (``cancelled``); running it
  again continues where it stopped.
- 4 ``REAUTH``: Constant Contact rejected the access token; re-authorize.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Final, Literal, cast

FailureType = Literal["config", "auth", "quota", "transient", "system", "cancelled"]
"""Who must act on a failure.

``config``: the user -- fix a setting (API key, permissions, warehouse, API version).
``auth``: the user -- re-authorize (the access token is revoked, expired or invalid).
``quota``: nobody -- the API key's daily quota is spent; the run resumes after the reset.
``transient``: nobody -- it goes away; the next run (or a retry) succeeds.
``system``: a maintainer -- a ctctsync bug or an API answer that breaks its documentation.
``cancelled``: nobody -- a person or a shutdown asked the run to stop; the next run continues.
"""

RunOutcome = Literal["succeeded", "partial", "failed", "cancelled"]
"""How a finished run ended. ``partial``: the daily quota ran out (``resume_at`` says when
to go on); ``cancelled``: asked to stop. Tables finished before stay committed either way."""

WITH_WARNINGS: Final = "succeeded with warnings"
"""How a ``succeeded`` run with warnings is shown (issue 8 §1, "no silent loss"). The stored
status stays ``succeeded`` (exit code 0, the integration healthy); the warnings say what
the run did not load (e.g. a campaign deleted during the run)."""


def status_label(status: str, warnings: Sequence[str] | None) -> str:
    """A run's status as shown to a user: :data:`WITH_WARNINGS` for a succeeded run that
    has warnings, else the status itself.

    >>> status_label("succeeded", ["contact_tracking: 1 campaign deleted during the run: 7"])
    'succeeded with warnings'
    """
    return WITH_WARNINGS if status == "succeeded" and warnings else status


Actor = Literal["user", "nobody", "maintainer"]
"""Who has to do something before a new run can succeed."""


class ExitCode(IntEnum):
    """The process exit codes of every ``ctctsync`` command (see the module docstring)."""

    OK = 0
    FAILED = 1
    CONFIG = 2
    STOPPED = 3
    REAUTH = 4


@dataclass(frozen=True)
class FailureOutcome:
    """What one failure type means for the run, the CLI and the REST API."""

    who_acts: Actor
    run_status: RunOutcome
    """The status a run ends with when this failure decides it."""
    stops_run: bool
    """True: the remaining tables are skipped (going on cannot help); False: the run goes
    on with the next table and ends ``failed``."""
    exit_code: ExitCode
    http_status: int
    """The HTTP status the REST API answers with when it reports this failure."""


FAILURES: Final[Mapping[FailureType, FailureOutcome]] = MappingProxyType(
    {
        "config": FailureOutcome("user", "failed", False, ExitCode.CONFIG, 422),
        "auth": FailureOutcome("user", "failed", True, ExitCode.REAUTH, 422),
        "quota": FailureOutcome("nobody", "partial", True, ExitCode.STOPPED, 429),
        "transient": FailureOutcome("nobody", "failed", False, ExitCode.FAILED, 503),
        "system": FailureOutcome("maintainer", "failed", False, ExitCode.FAILED, 502),
        "cancelled": FailureOutcome("nobody", "cancelled", True, ExitCode.STOPPED, 409),
    }
)
"""The one table from failure type to its consequences."""

_ASSUMED: Final[Mapping[str, FailureType]] = MappingProxyType(
    {"failed": "system", "partial": "quota", "cancelled": "cancelled"}
)
"""The failure type read into a run that ended without one (or with one that does not
match its status, e.g. a run cancelled before it started, or stored by an older version)."""


def exit_code(status: str, failure_type: str | None = None) -> ExitCode:
    """The exit code of a run that ended with ``status`` and ``failure_type``.

    >>> int(exit_code("failed", "auth")), int(exit_code("partial", "quota"))
    (4, 3)
    """
    if status == "succeeded":
        return ExitCode.OK
    outcome = FAILURES[cast(FailureType, failure_type)] if failure_type in FAILURES else None
    if outcome is None or outcome.run_status != status:
        outcome = FAILURES[_ASSUMED.get(status, "system")]
    return outcome.exit_code
