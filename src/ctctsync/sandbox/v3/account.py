"""v3 account endpoints (constant-contact-v3-api.md §3.10): the summary, the physical address,
the account's email addresses and the user's privileges.

The owner and organisation are the version-neutral ``AccountInfo`` (what ``/v2/account/info``
serves); what only v3 shows (encoded ids, organisation phone, the address list) is
``Account.v3_info``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ctctsync.sandbox.records import AccountEmail, AccountInfo
from ctctsync.sandbox.v3.common import (
    V3Error,
    bad_request,
    query,
    ts_plus0000,
    v3_json,
)
from ctctsync.sandbox.v3.face import V3Face

SCOPE = "account_read"
READ = "account:read"
EXTRA_FIELDS = ("physical_address", "company_logo")
STATE_CODE_COUNTRIES = frozenset({"US", "CA"})
"""Countries whose address has a ``state_code``; others use ``state_name`` (contract)."""

CONFIRM_FILTER = {"CONFIRMED": True, "C": True, "UNCONFIRMED": False, "U": False}
ROLE_FILTER = {"C": "CONTACT", "B": "BILLING", "R": "REPLY_TO", "J": "JOURNALING", "O": "OTHER"}
"""``role_code`` abbreviations (contract ``retrieveEmailAddresses``)."""

PRIVILEGE_IDS = {
    "account:read": 1, "account:update": 2, "contacts:read": 10, "contacts:write": 11,
    "contacts:lists:read": 12, "contacts:lists:write": 13, "campaign:read": 20,
    "campaign:write": 21, "ui:campaign:metrics": 30, "mylibrary:file:read": 40,
    "mylibrary:folder:read": 41,
}
"""Stable numeric ids of the privileges the sandbox knows (CC's real numbering is unknown)."""


def _privilege_id(name: str) -> int:
    # a privilege a test adds gets a stable id of its own, clear of the table's
    return PRIVILEGE_IDS.get(name) or 1000 + zlib.crc32(name.encode()) % 100_000


def physical_address(info: AccountInfo) -> dict[str, Any]:
    """``AccountPhysicalAddress``: empty lines omitted (they must be 1-80 characters);
    ``state_code`` for US/CA, else ``state_name`` (contract)."""
    country = info.country_code.upper()
    in_states = country in STATE_CODE_COUNTRIES
    return {
        "address_line1": info.line1, "address_line2": info.line2 or None,
        "address_line3": info.line3 or None, "city": info.city,
        "state_code": (info.state_code or None) if in_states else None,
        "state_name": None if in_states else (info.state_code or None),
        "postal_code": info.postal_code or None, "country_code": country,
    }


def _company_logo(info: AccountInfo) -> dict[str, Any] | None:
    if not info.company_logo:
        return None  # no logo: nothing to show even when asked for
    return {"url": info.company_logo, "internal_id": "ACCOUNT.IMAGE.1"}


def _extra_fields(params: Mapping[str, str]) -> frozenset[str]:
    raw = params.get("extra_fields") or ""
    values = frozenset(v.strip() for v in raw.split(",") if v.strip())
    for v in values:
        if v not in EXTRA_FIELDS:
            raise V3Error(bad_request("extra_fields", f"value '{v}' is not valid.", "account"))
    return values


def _email_body(e: AccountEmail) -> dict[str, Any]:
    return {
        "email_id": e.email_id, "email_address": e.address, "roles": list(e.roles),
        "confirm_status": "CONFIRMED" if e.confirmed else "UNCONFIRMED",
        # ``+0000``, no colon: the account service's own style (§1.6)
        "confirm_time": ts_plus0000(e.confirm_ms) if e.confirm_ms is not None else None,
        "confirm_source_type": e.confirm_source_type or None,
    }


def _email_filter(params: Mapping[str, str]) -> tuple[str, str] | None:
    """The one filter of ``GET /account/emails`` (more than one is a 400, §3.10)."""
    given = [(k, params[k]) for k in ("confirm_status", "role_code", "email_address")
             if params.get(k)]
    if len(given) > 1:
        raise V3Error(bad_request("query", "accepts only one filter at a time.", "account"))
    if not given:
        return None
    name, value = given[0]
    if name == "confirm_status" and value.upper() not in CONFIRM_FILTER:
        raise V3Error(bad_request(name, "does not have a valid value.", "account"))
    if name == "role_code" and value.upper() not in {*ROLE_FILTER, *ROLE_FILTER.values()}:
        raise V3Error(bad_request(name, "does not have a valid value.", "account"))
    return name, value


def _email_matches(e: AccountEmail, flt: tuple[str, str] | None) -> bool:
    if flt is None:
        return True
    name, value = flt
    if name == "confirm_status":
        return e.confirmed == CONFIRM_FILTER[value.upper()]
    if name == "role_code":
        role = ROLE_FILTER.get(value.upper(), value.upper())
        return role in e.roles
    return e.address.lower() == value.strip().lower()


def routes(face: V3Face) -> list[Route]:
    """The account routes: ``account_read`` + ``account:read``; privileges with any scope."""
    account = face.ctx.account
    read = face.guarded(SCOPE, READ)

    async def summary(request: Request) -> Response:
        """``GET /v3/account/summary``: ``physical_address``/``company_logo`` only when asked
        for with ``extra_fields``; empty values omitted (§3.10, §1.6)."""
        extra = _extra_fields(query(request))
        info, v3 = account.info, account.v3_info
        body: dict[str, Any] = {
            "contact_email": info.email, "contact_phone": info.phone or None,
            "country_code": info.country_code or None,
            "encoded_account_id": v3.encoded_account_id,
            "encoded_partner_id": v3.encoded_partner_id,
            "first_name": info.first_name or None, "last_name": info.last_name or None,
            "organization_name": info.organization_name or None,
            "organization_phone": v3.organization_phone or None,
            "state_code": info.state_code or None, "time_zone_id": info.time_zone or None,
            "website": info.website or None,
        }
        if "physical_address" in extra:
            body["physical_address"] = physical_address(info)
        if "company_logo" in extra:
            body["company_logo"] = _company_logo(info)
        return v3_json(body)

    async def address(request: Request) -> Response:
        """``GET /v3/account/summary/physical_address``: the address object alone."""
        return v3_json(physical_address(account.info))

    async def emails(request: Request) -> Response:
        """``GET /v3/account/emails``: a bare array; one filter at a time (§3.10)."""
        flt = _email_filter(query(request))
        return v3_json([_email_body(e) for e in account.v3_info.emails if _email_matches(e, flt)])

    async def privileges(request: Request) -> Response:
        """``GET /v3/account/user/privileges``: a bare array of the user's privileges, for a
        token of any scope (§3.10) -- the token store's ``privileges``."""
        names = sorted(face.tokens.privileges, key=lambda n: (_privilege_id(n), n))
        return v3_json([{"privilege_id": _privilege_id(n), "privilege_name": n} for n in names])

    return [
        Route("/v3/account/summary", read(summary)),
        Route("/v3/account/summary/physical_address", read(address)),
        Route("/v3/account/emails", read(emails)),
        Route("/v3/account/user/privileges", face.guarded(None, None)(privileges)),
    ]
