"""Validate v3 response bodies against the official contract (Swagger 2.0; v3 reference §0 [SW]).

Usage (from a test in ``tests/sandbox/``, which pytest puts on ``sys.path``)::

    from v3_contract import ContractError, operation_for, validate

    validate("GET", operation_for("/v3/contacts/abc"), 200, response.json())

What "validates" means here:

* The schema of the operation's response for that status (exact code, else ``default``) is
  checked with JSON Schema Draft 4 (what Swagger 2.0 schemas are), ``$ref`` into
  ``#/definitions`` resolved.
* Swagger-only keywords (``x-*``, ``discriminator``, ``readOnly``, ``example``, ``xml``, ...)
  are dropped before compiling.
* **Strict objects:** an object schema that declares ``properties`` and says nothing about
  ``additionalProperties`` is closed (``additionalProperties: false``). A field the contract
  does not declare is a field the contract cannot describe: a sandbox bug unless a real body
  proves CC sends it (then it is a :data:`QUIRKS` entry).
* Formats ``date-time`` (RFC 3339: ``Z``, ``.000Z`` and ``-04:00`` pass, ``+0000`` does not),
  ``date`` (``YYYY-MM-DD``) and ``uuid`` (8-4-4-4-12 hex) are checked; others (int32, email) not.
* **Error bodies:** every error response in the contract is a bare description without a
  schema (``#/responses/Standard4xxErrorResponse``). The contract's two error definitions,
  orphaned by that, are used instead: ``AuthorizationErrorSchema`` (an object) for 401 and
  ``APIErrorSchema`` (an array of ``{error_key, error_message}``) for every other status >= 400
  (§1.4). UNCONFIRMED: chose these because they are the only error shapes the contract names
  and §1.4 ties them to these statuses; the alternative (check nothing) lets any body through.
* Closed value lists the contract states only in prose are checked as ``enum``
  (:data:`DESCRIBED_VALUES`).
* A status the operation does not declare (and no ``default``) is a violation. A 2xx status
  declared without a schema checks nothing; a non-empty body there is logged (not failed).

Documented contract quirks (a real CC body the contract cannot describe) are in :data:`QUIRKS`,
each keyed by operation + JSON path + keyword, with the fixture proving it (explained in
docs/v3-contract-quirks.md). A violation matching a quirk is not reported; nothing else is.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

log = logging.getLogger(__name__)

# shared/ sits beside the repository (locally and in CI), like the other reference fixtures.
_REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
CONTRACT_PATH = Path(os.environ.get("CTCTSYNC_V3_CONTRACT",
                                    str(_REFERENCE / "constant-contact-v3-swagger.yaml")))
FIXTURES_V3 = Path(os.environ.get("CTCTSYNC_REFERENCE_FIXTURES_V3",
                                  str(_REFERENCE / "fixtures-v3")))

BASE_PATH = "/v3"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch")

# Swagger 2.0 schema keywords that JSON Schema Draft 4 does not have (dropped before compiling).
_SWAGGER_ONLY = frozenset({"discriminator", "readOnly", "example", "xml", "externalDocs", "title",
                           "description", "label", "label_key"})
# The contract's own error definitions, by status (see the module docstring).
_ERROR_DEFINITION = {401: "AuthorizationErrorSchema"}
_DEFAULT_ERROR_DEFINITION = "APIErrorSchema"


class ContractError(AssertionError):
    """A response body the contract cannot describe; ``violations`` lists every reason."""

    def __init__(self, operation: str, status: int, violations: list[Violation]) -> None:
        self.operation = operation
        self.status = status
        self.violations = violations
        lines = "\n".join(f"  {v.path}: {v.reason} [{v.keyword}]" for v in violations)
        super().__init__(
            f"{operation} -> {status}: {len(violations)} contract violation(s)\n{lines}")


@dataclass(frozen=True)
class Violation:
    """One reason a body does not validate: where (``$.contacts[0].first_name``), which keyword."""

    path: str
    keyword: str
    reason: str

    @property
    def pattern(self) -> str:
        """The path with array indices as ``[*]`` (what :class:`Quirk` entries are keyed by)."""
        return re.sub(r"\[\d+\]", "[*]", self.path)


@dataclass(frozen=True)
class Quirk:
    """A place where CC's real answers break the contract, so a sandbox copying CC must too.

    ``method``/``path_template`` may be ``"*"`` (a cross-cutting quirk), ``status`` None (any).
    ``proven_by`` names the fixtures-v3 files whose validation needs this quirk (the test checks
    they still do); a quirk no captured body can prove says why in ``reason``.
    """

    method: str
    path_template: str
    status: int | None
    json_path: str
    keyword: str
    reason: str
    proven_by: tuple[str, ...] = ()

    def matches(self, method: str, path_template: str, status: int, violation: Violation) -> bool:
        """Whether this quirk explains ``violation`` of that operation and status."""
        return (self.method in ("*", method.upper())
                and self.path_template in ("*", path_template)
                and self.status in (None, status)
                and self.json_path == violation.pattern
                and self.keyword == violation.keyword)


_ANY_CALL = "every v3 call needs a Bearer token with the operation's scopes and counts against " \
    "the application's limits (§1.2, §1.5)"
_429_BODIES = ("ERROR_429_throttled__v3doc.json", "ERROR_429_quota_exceeded__v3doc.json")

QUIRKS: tuple[Quirk, ...] = (
    # -- refusals every operation can answer, declared or not ----------------------------------
    Quirk("*", "*", 401, "$", "status",
          f"401 is not declared by every operation (e.g. the registrations list), yet {_ANY_CALL}; "
          "the real 401 body (ERROR_401_v3_contact_lists__craft-freeform-issue.json) comes from "
          "an operation that declares it"),
    Quirk("*", "*", 403, "$", "status",
          "403 (missing scope or user privilege) is not declared by every operation (e.g. "
          f"GET /segments/{{segment_id}}), yet {_ANY_CALL}; no captured 403 body"),
    Quirk("*", "*", 429, "$", "status",
          f"429 is declared by few operations, yet {_ANY_CALL}; CC's documented bodies are "
          "not tied to an operation", _429_BODIES),
    Quirk("*", "*", 429, "$", "type",
          "429 bodies are one object {error_key, error_message}, not the APIErrorSchema array "
          "(§1.4, §1.5)", _429_BODIES),
    # -- account emails: a real body (NANGO, §3.10) ---------------------------------------------
    Quirk("GET", "/account/emails", 200, "$[*].confirm_time", "format",
          "confirm_time uses a +0000 offset without a colon, not RFC 3339 (§1.6)",
          ("GET_v3_account_emails__nango.json",)),
    Quirk("GET", "/account/emails", 200, "$[*].confirm_source", "additionalProperties",
          "confirm_source (an IP address) is sent but not declared in AccountEmails (§3.10)",
          ("GET_v3_account_emails__nango.json",)),
    Quirk("GET", "/account/emails", 200, "$[*].roles[*]", "enum",
          "roles holds DEFAULT_FROM, which the contract's role list (CONTACT, BILLING, "
          "JOURNALING, REPLY_TO, OTHER) lacks (§3.10)", ("GET_v3_account_emails__nango.json",)),
    # -- campaign status casing: a real body (NANGO, §1.6, §3.6) ---------------------------------
    Quirk("GET", "/emails/{campaign_id}", 200, "$.current_status", "enum",
          "the campaign detail spells current_status upper-case (DRAFT) where the contract lists "
          "Draft, Scheduled, ... as for the list (which does send Draft)",
          ("GET_v3_emails_ID__nango.json",)),
)
"""Every documented contract quirk (docs/v3-contract-quirks.md); nothing else is tolerated."""


@cache
def spec() -> dict[str, Any]:
    """The contract, parsed once (C YAML loader when PyYAML has it: 700 KB)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with CONTRACT_PATH.open(encoding="utf-8") as f:
        loaded: dict[str, Any] = yaml.load(f, Loader=loader)
    return loaded


def _json_schema(node: Any) -> Any:
    """A Swagger 2.0 schema as Draft 4: Swagger-only keywords dropped, objects closed."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SWAGGER_ONLY or key.startswith("x-"):
            continue
        if key == "properties":
            out[key] = {name: _json_schema(sub) for name, sub in value.items()}
        elif key == "required" and not isinstance(value, list):
            continue  # ``required: true`` on a property is a Swagger-author slip, not Draft 4
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = _json_schema(value)
        else:
            out[key] = value
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


_SOURCES = ("Contact", "Account")
_CAMPAIGN_STATUS = ("Draft", "Scheduled", "Executing", "Done", "Error", "Removed")
_ACTIVITY_STATE = ("initialized", "processing", "completed", "cancelled", "failed", "timed_out")
_ROLES = ("primary_email", "permalink", "resend")
_REGISTRATION = ("PENDING", "REGISTERED", "CANCELED", "EXPIRED", "IN_PROGRESS", "FAILED")

DESCRIBED_VALUES: dict[tuple[str, str], tuple[str | int, ...]] = {
    ("EmailAddress", "permission_to_send"): ("explicit", "implicit", "not_set",
                                             "pending_confirmation", "temp_hold", "unsubscribed"),
    ("EmailAddress", "confirm_status"): ("pending", "confirmed", "off"),
    ("EmailAddress", "opt_in_source"): _SOURCES,
    ("EmailAddress", "opt_out_source"): _SOURCES,
    ("ContactResource", "create_source"): _SOURCES,
    ("ContactResource", "update_source"): _SOURCES,
    ("PhoneNumber", "kind"): ("home", "work", "mobile", "other"),
    ("PhoneNumber", "create_source"): _SOURCES,
    ("PhoneNumber", "update_source"): _SOURCES,
    ("StreetAddress", "kind"): ("home", "work", "other"),
    ("EmailCampaigns", "current_status"): _CAMPAIGN_STATUS,
    ("EmailCampaign", "current_status"): _CAMPAIGN_STATUS,
    ("EmailCampaigns", "type_code"): (1, 2, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
                                      24, 25, 26, 57),
    ("EmailCampaign", "type_code"): (1, 2, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
                                     24, 25, 26, 57),
    ("ActivityReference", "role"): _ROLES,
    ("EmailCampaignActivity", "role"): _ROLES,
    ("EmailCampaignActivity", "current_status"): tuple(v.upper() for v in _CAMPAIGN_STATUS),
    ("EmailCampaignActivity", "format_type"): (1, 2, 3, 4, 5),
    ("EmailSendHistory", "send_status"): ("COMPLETED", "ERRORED"),
    ("EmailSendHistory", "reason_code"): tuple(range(13)),
    ("Activity", "state"): _ACTIVITY_STATE,
    ("ActivityExportStatus", "state"): _ACTIVITY_STATE,
    ("AccountEmails", "roles"): ("CONTACT", "BILLING", "JOURNALING", "REPLY_TO", "OTHER"),
    ("AccountEmails", "confirm_source_type"): ("SITE_OWNER", "SUPPORT", "FORCEVERIFY", "PARTNER"),
    ("BouncesTrackingActivity", "bounce_code"): ("B", "D", "F", "S", "V", "X", "Z"),
    ("RegistrantInformationLiteDto", "registration_status"): _REGISTRATION,
    ("DetailedRegistrationDto", "registration_status"): _REGISTRATION,
    ("OrderDetailsDto", "payment_status"): ("PENDING", "PAID", "REFUNDED", "CANCELLED", "FAILED",
                                            "CHARGED_BACK", "UNKNOWN"),
}
"""Closed value lists the contract states in prose ("Valid values are ...", "Possible values:
...") but not as ``enum`` (it has no ``enum`` in any definition): transcribed per (definition,
property) and checked as ``enum`` (on the items of an array property)."""


def _with_described_values(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    target = schema.get("items", schema) if schema.get("type") == "array" else schema
    for (definition, prop), values in DESCRIBED_VALUES.items():
        if definition != name:
            continue
        slot = target["properties"][prop]
        slot = slot["items"] if slot.get("type") == "array" else slot
        slot["enum"] = list(values)
    return schema


@cache
def _definitions() -> dict[str, Any]:
    converted: dict[str, Any] = {name: _with_described_values(name, _json_schema(d))
                                 for name, d in spec()["definitions"].items()}
    return converted


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def _is_date(value: str) -> bool:
    if not _DATE.match(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


# date-time stays the validator's own RFC 3339 check (Draft 4 has it); Draft 4 has no date/uuid.
_FORMATS = {"uuid": _is_uuid, "date": _is_date}


@cache
def _validator(schema_key: str) -> jsonschema_rs.Draft4Validator:
    """A compiled validator for one response schema, keyed by its JSON text (cached)."""
    schema = {**json.loads(schema_key), "definitions": _definitions()}
    return jsonschema_rs.Draft4Validator(schema, validate_formats=True, formats=_FORMATS)


def _operation(method: str, path_template: str) -> dict[str, Any]:
    path_item = spec()["paths"].get(path_template)
    if path_item is None:
        raise ContractError(f"{method.upper()} {path_template}", 0, [
            Violation("$", "operation", f"the contract has no path {path_template!r}")])
    op = path_item.get(method.lower())
    if op is None:
        raise ContractError(f"{method.upper()} {path_template}", 0, [
            Violation("$", "operation", f"the contract has no {method.upper()} on this path")])
    return dict(op)


def _response(op: dict[str, Any], status: int) -> dict[str, Any] | None:
    """The declared response for ``status``: exact code, else ``default``; ``$ref`` resolved."""
    responses = op.get("responses", {})
    resp = responses.get(str(status), responses.get(status, responses.get("default")))
    if resp is None:
        return None
    if "$ref" in resp:
        resp = spec()["responses"][resp["$ref"].rsplit("/", 1)[1]]
    return dict(resp)


def _is_empty(body: Any) -> bool:
    return body is None or body in ("", b"")


def _error_schema(status: int) -> dict[str, Any] | None:
    """The contract's own error definition for an error status without a schema (see top)."""
    if status < 400:
        return None
    return {"$ref": f"#/definitions/{_ERROR_DEFINITION.get(status, _DEFAULT_ERROR_DEFINITION)}"}


def response_schema(method: str, path_template: str, status: int, *,
                    quirks: tuple[Quirk, ...] = QUIRKS) -> dict[str, Any] | None:
    """The JSON Schema a body of that operation and status must match (None: nothing to check).

    Raises :class:`ContractError` when the contract does not know the operation or the status
    (a status quirk, e.g. 429 on any operation, falls back to the error definitions).
    """
    operation = f"{method.upper()} {path_template}"
    resp = _response(_operation(method, path_template), status)
    if resp is None:
        undeclared = _undeclared_status(status)
        if not any(q.matches(method, path_template, status, undeclared) for q in quirks):
            raise ContractError(operation, status, [undeclared])
        return _error_schema(status)
    if "schema" in resp:
        schema: dict[str, Any] = _json_schema(resp["schema"])
        return schema
    return _error_schema(status)


def _undeclared_status(status: int) -> Violation:
    return Violation("$", "status", f"the contract declares no {status} (and no default) here")


def _path_text(instance_path: list[str | int]) -> str:
    text = "$"
    for part in instance_path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _violations(validator: jsonschema_rs.Draft4Validator, body: Any) -> list[Violation]:
    """Every error, one per undeclared property (so quirks can name the property)."""
    found: list[Violation] = []
    for error in validator.iter_errors(body):
        path = _path_text(list(error.instance_path))
        keyword = type(error.kind).__name__
        keyword = keyword[0].lower() + keyword[1:]
        unexpected = getattr(error.kind, "unexpected", None)
        missing = getattr(error.kind, "property", None)
        if keyword == "required" and isinstance(missing, str):
            # keyed by the missing property, so a quirk can name it (not "anything required")
            found.append(Violation(f"{path}.{missing}", keyword, error.message))
        elif keyword == "additionalProperties" and unexpected:
            found.extend(Violation(f"{path}.{name}", keyword, "not declared by the contract")
                         for name in unexpected)
        else:
            found.append(Violation(path, keyword, error.message))
    return found


def violations(method: str, path_template: str, status: int, body: Any, *,
               quirks: tuple[Quirk, ...] = QUIRKS) -> list[Violation]:
    """Every violation of ``body`` not explained by one of ``quirks`` (empty: it validates)."""
    schema = response_schema(method, path_template, status, quirks=quirks)
    if schema is None:
        if not _is_empty(body):
            log.warning("%s %s -> %s: the contract declares no body; not checked",
                        method.upper(), path_template, status)
        return []
    found = _violations(_validator(json.dumps(schema, sort_keys=True)), body)
    return [v for v in found
            if not any(q.matches(method, path_template, status, v) for q in quirks)]


def validate_error(status: int, body: Any) -> None:
    """Check an error answer no operation owns (an unknown /v3 path, a wrong method) against
    the contract's error definition for ``status`` (see the module docstring)."""
    schema = _error_schema(status)
    if schema is None:
        raise ContractError(f"(no operation) {status}", status,
                            [Violation("$", "status", "not an error status")])
    found = _violations(_validator(json.dumps(schema, sort_keys=True)), body)
    if found:
        raise ContractError(f"(no operation) {status}", status, found)


def validate(method: str, path_template: str, status: int, body: Any) -> None:
    """Raise :class:`ContractError` unless ``body`` is what the contract describes for
    ``method path_template`` answering ``status`` (path_template without ``/v3``)."""
    found = violations(method, path_template, status, body)
    if found:
        raise ContractError(f"{method.upper()} {path_template}", status, found)


@cache
def _templates() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Contract paths split into segments, most literal segments first (``/contacts/counts``
    wins over ``/contacts/{contact_id}``)."""
    split = [(t, tuple(t.strip("/").split("/"))) for t in spec()["paths"]]
    return tuple(sorted(split, key=lambda ts: (-sum(not s.startswith("{") for s in ts[1]), ts[0])))


def operation_for(path: str) -> str | None:
    """The contract path template of a concrete request path (``/v3/contacts/abc`` ->
    ``/contacts/{contact_id}``); query string ignored; None when no contract path matches."""
    path = path.split("?", 1)[0]
    if path.startswith(BASE_PATH + "/"):
        path = path[len(BASE_PATH):]
    parts = tuple(path.strip("/").split("/"))
    for template, segments in _templates():
        if len(segments) == len(parts) and all(
                s.startswith("{") or s == p for s, p in zip(segments, parts, strict=True)):
            return template
    return None


def produces(method: str, path_template: str) -> list[str]:
    """The media types the operation answers with (its ``produces``, else the contract's)."""
    op = _operation(method, path_template)
    found: list[str] = op.get("produces") or spec().get("produces") or ["application/json"]
    return found


def operations() -> list[tuple[str, str]]:
    """Every (METHOD, path template) of the contract."""
    return [(m.upper(), t) for t, item in spec()["paths"].items() for m in item if m in METHODS]
