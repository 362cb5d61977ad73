"""The sandbox's v3 account endpoints (constant-contact-v3-api.md §3.10) over real HTTP, every
body checked against the official contract (``v3_contract.validate``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from v3_contract import operation_for, validate

from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.records import build_info
from ctctsync.sandbox.testing import SMALL_SPEC, SandboxFactory


class V3:
    """A v3 client that checks every answer against the contract."""

    def __init__(self, sb: Sandbox, token: str) -> None:
        self.http = httpx.Client(base_url=sb.base_url, timeout=10,
                                 headers={"Authorization": f"Bearer {token}"})

    def get(self, path: str, params: Any = None, status: int = 200) -> Any:
        r = self.http.get(path, params=params)
        assert r.status_code == status, (path, r.status_code, r.text[:500])
        template = operation_for(path)
        assert template is not None, path
        validate("GET", template, r.status_code, r.json())
        return r.json()


@pytest.fixture
def v3(sandbox: Sandbox) -> Iterator[V3]:
    client = V3(sandbox, sandbox.v3_tokens.issue_access_token())
    yield client
    client.http.close()


def test_summary_matches_the_v2_account_and_extras_only_on_request(sandbox: Sandbox,
                                                                   v3: V3) -> None:
    info = sandbox.account.info
    body = v3.get("/v3/account/summary")
    assert "physical_address" not in body and "company_logo" not in body
    assert body["contact_email"] == info.email
    assert body["organization_name"] == info.organization_name
    assert body["first_name"] == info.first_name and body["last_name"] == info.last_name
    assert body["time_zone_id"] == info.time_zone
    assert re.fullmatch(r"a07e[a-z0-9]{10}", body["encoded_account_id"])
    assert all(v not in ("", None) for v in body.values())  # empty values omitted (§1.6)

    full = v3.get("/v3/account/summary", {"extra_fields": "physical_address,company_logo"})
    address = full["physical_address"]
    assert address["address_line1"] == info.line1 and address["city"] == info.city
    assert address["country_code"] == info.country_code.upper()
    assert ("address_line3" in address) == bool(info.line3)
    if info.company_logo:
        assert full["company_logo"]["url"] == info.company_logo
    only_address = v3.get("/v3/account/summary", {"extra_fields": "physical_address"})
    assert "company_logo" not in only_address
    assert v3.get("/v3/account/summary/physical_address") == address
    v3.get("/v3/account/summary", {"extra_fields": "billing"}, 400)


def test_company_logo_is_absent_when_the_account_has_none(
        sandbox_factory: SandboxFactory) -> None:
    # about 30 % of seeds have no logo; which ones is deterministic
    seed = next(s for s in range(1, 50) if not build_info(s).company_logo)
    sb = sandbox_factory(replace(SMALL_SPEC, seed=seed, contacts=5))
    client = V3(sb, sb.v3_tokens.issue_access_token())
    body = client.get("/v3/account/summary", {"extra_fields": "company_logo"})
    assert "company_logo" not in body
    client.http.close()


def test_account_emails_one_filter_at_a_time(sandbox: Sandbox, v3: V3) -> None:
    every = v3.get("/v3/account/emails")
    assert isinstance(every, list) and len(every) == 3  # a bare array (§3.10)
    owner = every[0]
    assert owner["email_address"] == sandbox.account.info.email
    assert owner["confirm_status"] == "CONFIRMED"
    # the account service's own time style: millis and +0000 (§1.6)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", owner["confirm_time"])
    confirmed = v3.get("/v3/account/emails", {"confirm_status": "C"})
    assert [e["email_id"] for e in confirmed] == [e["email_id"] for e in every
                                                 if e["confirm_status"] == "CONFIRMED"]
    unconfirmed = v3.get("/v3/account/emails", {"confirm_status": "UNCONFIRMED"})
    assert len(unconfirmed) == 1 and "confirm_time" not in unconfirmed[0]
    assert [e["email_id"] for e in v3.get("/v3/account/emails", {"role_code": "B"})] == [1]
    assert v3.get("/v3/account/emails", {"email_address": owner["email_address"].upper()}) == [
        owner]
    v3.get("/v3/account/emails", {"confirm_status": "C", "role_code": "B"}, 400)
    v3.get("/v3/account/emails", {"confirm_status": "maybe"}, 400)


def test_user_privileges_with_any_scope(sandbox: Sandbox) -> None:
    token = sandbox.v3_tokens.issue_access_token(scopes=["offline_access"])
    client = V3(sandbox, token)
    body = client.get("/v3/account/user/privileges")
    names = [p["privilege_name"] for p in body]
    assert set(names) == set(sandbox.v3_tokens.privileges)
    assert len({p["privilege_id"] for p in body}) == len(body)
    # but the summary needs account_read
    refused = client.get("/v3/account/summary", status=403)
    assert "account_read" in refused[0]["error_message"]
    client.http.close()


def test_account_read_privilege_is_required(sandbox: Sandbox, v3: V3) -> None:
    tokens = sandbox.v3_tokens
    saved = tokens.privileges
    tokens.privileges = saved - {"account:read"}
    try:
        body = v3.get("/v3/account/emails", status=403)
        assert "account:read" in body[0]["error_message"]
        privileges = v3.get("/v3/account/user/privileges")
        assert "account:read" not in {p["privilege_name"] for p in privileges}
    finally:
        tokens.privileges = saved
    r = httpx.get(f"{sandbox.base_url}/v3/account/summary",
                  headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401 and r.json()["error_key"] == "unauthorized"
