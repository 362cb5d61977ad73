"""The API budget over the REST API (issue 10): ``GET /quota`` (per key: limits, used today,
reserved for today's scheduled runs, headroom; per integration: estimated calls per run and
per day with the basis), ``GET /api-keys``, ``PUT /api-keys/{fingerprint}`` (administrators;
validation in the API's error shape), the estimate on ``GET /integrations/{id}``, and
``POST /integrations/{id}/run`` refusing a job the quota will not cover.

Real HTTP to the served app over a real store. The plane's clock is frozen at noon UTC so
"the rest of today" is the same whenever the suite runs; the runs that make the history are
stored rows, as the worker leaves them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.api.ratelimit import fingerprint
from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.context import context
from ctctsync.control.models import Integration, Run, User
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.control.services import quota
from web.helpers import ADMIN_EMAIL, WebServer, create_admin

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
"""The frozen time of every test here: 12 hours of the UTC day are left."""
API_KEY = "acme-api-key-0123456789-f00d"
"""A v2 API key (manual credentials): never shown, not even in part: only its fingerprint."""
KEY = fingerprint(API_KEY)
LABEL = f"v2 key #{KEY[:6]}"
"""How the key is shown: a hash of it (``services.quota.key_of``)."""
HISTORY = (
    {"contacts": 3, "contact_lists": 1, "contact_tracking": 2},
    {"contacts": 5, "contact_lists": 1, "contact_tracking": 2},
    {"contacts": 4, "contact_lists": 1, "contact_tracking": 4},
)
"""Calls per table of acme's three incremental runs today: medians 4 + 1 + 2 = 7 a run."""
PER_RUN = 7
USED_TODAY = sum(sum(calls.values()) for calls in HISTORY)  # 23
RUNS_LEFT = 12
"""Hourly, next run at 12:30: 12:30, 13:30, ... 23:30."""


@dataclass
class Budgeted:
    """A served app with acme (v2, hourly, three runs today) and an admin's API token."""

    web: WebServer
    integration_id: int
    token: str

    def api(self, token: str | None = None) -> httpx.Client:
        """A REST client with ``token`` (default: the admin's)."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        client = httpx.Client(
            base_url=self.web.base_url + "/api/v1", headers=headers, timeout=20
        )
        self.web.clients.append(client)
        return client


def freeze(web: WebServer, at: datetime) -> ManualClock:
    """Stop the plane's clock at ``at`` (services and the scheduler read it)."""
    clock = ManualClock(at)
    web.plane.clock = clock
    web.plane.context = dataclasses.replace(web.plane.context, clock=clock)
    return clock


def admin_of(db: Session) -> User:
    user = db.scalar(sa.select(User).where(User.email == ADMIN_EMAIL))
    assert user is not None
    return user


def add_v2_integration(
    web: WebServer,
    name: str,
    *,
    owner: str = ADMIN_EMAIL,
    frequency_hours: int = 1,
    history: tuple[dict[str, int], ...] = HISTORY,
) -> int:
    """An active v2 integration on :data:`API_KEY`, next run at 12:30, with ``history``
    (incremental runs that finished this morning)."""
    with web.plane.session() as db:
        user = db.scalar(sa.select(User).where(User.email == owner))
        assert user is not None
        integ = svc.create_integration(
            db,
            user,
            IntegrationCreate(
                name=name,
                api_version="v2",
                frequency_hours=frequency_hours,
                tables=dict.fromkeys(HISTORY[0]),
            ),
        )
        integ.credentials_encrypted = context(db).box.encrypt_json(
            {"api_key": API_KEY, "access_token": "acme-access-token-" + "t" * 20}
        )
        integ.auth_method = "manual"
        integ.state = "active"
        integ.activated_at = NOON - timedelta(days=3)
        integ.next_run_at = NOON + timedelta(minutes=30)
        for hour, calls in enumerate(history):
            finished = NOON - timedelta(hours=hour + 1)
            db.add(
                Run(
                    integration_id=integ.id,
                    trigger="schedule",
                    status="succeeded",
                    kind="incremental",
                    created_at=finished - timedelta(minutes=1),
                    started_at=finished - timedelta(minutes=1),
                    finished_at=finished,
                    rows={},
                    table_status=dict.fromkeys(calls, "succeeded"),
                    api_calls=sum(calls.values()),
                    table_calls=dict(calls),
                    key_fingerprint=KEY,
                )
            )
        db.commit()
        return integ.id


@pytest.fixture
def budgeted(web: WebServer) -> Iterator[Budgeted]:
    freeze(web, NOON)
    create_admin(web.plane)
    integration_id = add_v2_integration(web, "acme")
    with web.plane.session() as db:
        _token, plaintext = svc.create_api_token(db, admin_of(db), "quota test")
    yield Budgeted(web, integration_id, plaintext)


def service_overview(web: WebServer) -> dict[str, Any]:
    """What the control plane's quota service says, as JSON."""
    with web.plane.session() as db:
        return quota.quota_overview(db, admin_of(db)).model_dump(mode="json")


# ----------------------------------------------------------------------------- GET /quota


def test_quota_needs_a_token(budgeted: Budgeted) -> None:
    with httpx.Client(base_url=budgeted.web.base_url, timeout=20) as anonymous:
        r = anonymous.get("/api/v1/quota")
    assert r.status_code == 401
    assert set(r.json()) == {"detail", "errors"}
    assert budgeted.api("ctct_not-a-token").get("/quota").status_code == 401


def test_quota_per_key_and_integration(budgeted: Budgeted) -> None:
    r = budgeted.api().get("/quota")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == service_overview(budgeted.web)  # the service's figures, unchanged
    [key] = body["keys"]
    assert key["key"] == KEY and key["label"] == LABEL
    assert API_KEY not in r.text
    assert (key["per_second"], key["per_day"]) == (4.0, 10_000)
    assert key["per_second_is_default"] and key["per_day_is_default"]
    assert key["used_today"] == USED_TODAY
    assert (key["reserved_runs"], key["reserved_today"]) == (RUNS_LEFT, RUNS_LEFT * PER_RUN)
    assert key["headroom"] == 10_000 - USED_TODAY - key["in_flight"] - RUNS_LEFT * PER_RUN
    assert key["planned_per_day"] == 24 * PER_RUN and key["fits"] is True
    assert key["resets_at"].startswith("2026-03-11T00:00:00")
    [acme] = key["integrations"]
    assert acme["name"] == "acme" and acme["integration_id"] == budgeted.integration_id
    assert acme["estimate"]["calls"] == PER_RUN
    assert acme["estimate"]["basis"] == "median of the last 3 incremental runs"
    assert acme["estimate"]["from_history"] is True
    assert (acme["runs_per_day"], acme["calls_per_day"]) == (24, 24 * PER_RUN)
    assert acme["used_today"] == USED_TODAY
    assert body["without_key"] == []


def test_a_key_counts_everyone_but_lists_only_what_the_user_may_see(
    budgeted: Budgeted,
) -> None:
    web = budgeted.web
    with web.plane.session() as db:
        svc.create_user(db, "ann@example.com", "correct horse battery")
    add_v2_integration(web, "anns", owner="ann@example.com", frequency_hours=24,
                       history=({"contacts": 10, "contact_lists": 1, "contact_tracking": 1},))
    with web.plane.session() as db:
        ann = db.scalar(sa.select(User).where(User.email == "ann@example.com"))
        assert ann is not None
        _t, ann_token = svc.create_api_token(db, ann, "ann")
    body = budgeted.api(ann_token).get("/quota").json()
    [key] = body["keys"]
    assert [i["name"] for i in key["integrations"]] == ["anns"]
    assert key["used_today"] == USED_TODAY + 12  # acme's calls count on the shared key
    admin_view = budgeted.api().get("/quota").json()["keys"][0]
    assert sorted(i["name"] for i in admin_view["integrations"]) == ["acme", "anns"]
    assert admin_view["used_today"] == key["used_today"]


def test_an_integration_without_credentials_has_no_key_yet(budgeted: Budgeted) -> None:
    with budgeted.web.plane.session() as db:
        svc.create_integration(db, admin_of(db), IntegrationCreate(name="fresh", api_version="v2"))
    body = budgeted.api().get("/quota").json()
    assert [b["name"] for b in body["without_key"]] == ["fresh"]
    assert body["without_key"][0]["key"] is None
    assert body["without_key"][0]["estimate"]["from_history"] is False


# ----------------------------------------------------------------------------- api keys


def test_api_keys_list_and_admin_only_limits(budgeted: Budgeted) -> None:
    api = budgeted.api()
    keys = api.get("/api-keys").json()
    assert [(k["key"], k["label"]) for k in keys] == [(KEY, LABEL)]

    with budgeted.web.plane.session() as db:
        svc.create_user(db, "ann@example.com", "correct horse battery")
        ann = db.scalar(sa.select(User).where(User.email == "ann@example.com"))
        assert ann is not None
        _t, ann_token = svc.create_api_token(db, ann, "ann")
    refused = budgeted.api(ann_token).put(f"/api-keys/{KEY}", json={"per_day": 5})
    assert refused.status_code == 403
    assert api.get("/quota").json()["keys"][0]["per_day"] == 10_000  # unchanged

    saved = api.put(f"/api-keys/{KEY}", json={"per_second": 10, "per_day": 250_000})
    assert saved.status_code == 200, saved.text
    assert saved.json()["per_second"] == 10.0 and saved.json()["per_day"] == 250_000
    assert saved.json()["per_day_is_default"] is False
    key = api.get("/quota").json()["keys"][0]
    assert (key["per_second"], key["per_day"]) == (10.0, 250_000)
    assert key["headroom"] == 250_000 - USED_TODAY - key["in_flight"] - RUNS_LEFT * PER_RUN
    with budgeted.web.plane.session() as db:
        integ = db.get(Integration, budgeted.integration_id)
        assert integ is not None
        assert quota.limits_for(db, integ) == (10.0, 250_000)  # what the worker will use

    back = api.put(f"/api-keys/{KEY}", json={"per_second": None})
    assert back.status_code == 200
    assert back.json()["per_second_is_default"] and back.json()["per_day_is_default"]
    assert back.json()["per_day"] == 10_000


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"per_second": 0}, "per_second", "greater than or equal to 0.1"),
        ({"per_second": 101}, "per_second", "less than or equal to 100"),
        ({"per_day": 0}, "per_day", "greater than or equal to 1"),
        ({"per_day": 1.5}, "per_day", "valid integer"),
        ({"per_day": "lots"}, "per_day", "valid integer"),
        ({"per_minute": 5}, "per_minute", "Extra inputs"),
    ],
)
def test_api_key_limits_validation(
    budgeted: Budgeted, body: dict[str, Any], field: str, words: str
) -> None:
    api = budgeted.api()
    r = api.put(f"/api-keys/{KEY}", json=body)
    assert r.status_code == 422, r.text
    answer = r.json()
    assert set(answer) == {"detail", "errors"}
    assert words in answer["errors"][field]
    assert api.get("/api-keys").json()[0]["per_day_is_default"] is True  # nothing saved


def test_api_key_unknown_or_malformed(budgeted: Budgeted) -> None:
    api = budgeted.api()
    unknown = api.put("/api-keys/0123456789abcdef", json={"per_day": 5})
    assert unknown.status_code == 404 and set(unknown.json()) == {"detail", "errors"}
    malformed = api.put("/api-keys/not-a-fingerprint", json={"per_day": 5})
    assert malformed.status_code == 422
    assert "fingerprint" in malformed.json()["errors"]


# ----------------------------------------------------------------------------- integrations


def test_integration_carries_its_estimate_and_tiers(budgeted: Budgeted) -> None:
    r = budgeted.api().get(f"/integrations/{budgeted.integration_id}")
    assert r.status_code == 200, r.text
    body = r.json()
    with budgeted.web.plane.session() as db:
        integ = db.get(Integration, budgeted.integration_id)
        assert integ is not None
        expected = quota.integration_budget(db, integ).model_dump(mode="json")
    assert body["budget"] == expected
    assert body["budget"]["estimate"]["calls"] == PER_RUN
    assert body["budget"]["calls_per_day"] == 24 * PER_RUN
    assert body["budget"]["key"] == KEY
    assert body["campaign_tiers"] == {
        "recent_days": 30,
        "older_days": 90,
        "older_every_hours": 24,
        "oldest_every_hours": 168,
        "recheck_days": 30,
        "events_every_hours": 24,
    }
    assert API_KEY not in r.text


def test_run_now_refused_when_the_quota_will_not_cover_it(budgeted: Budgeted) -> None:
    api = budgeted.api()
    # 30 a day: 23 used, the next scheduled run's 7 reserved, nothing left for a manual run
    assert api.put(f"/api-keys/{KEY}", json={"per_day": 30}).status_code == 200
    run_path = f"/integrations/{budgeted.integration_id}/run"
    refused = api.post(run_path)
    assert refused.status_code == 409, refused.text
    assert "00:00 UTC" in refused.json()["detail"]
    with budgeted.web.plane.session() as db:
        integ = db.get(Integration, budgeted.integration_id)
        assert integ is not None
        reason = quota.run_now_check(db, integ)
        assert reason is not None and reason in refused.json()["detail"]
        assert db.scalar(sa.select(sa.func.count()).where(Run.status == "queued")) == 0

    queued = api.post(run_path, params={"when_quota_allows": "true"})
    assert queued.status_code == 202, queued.text
    run = queued.json()
    assert run["status"] == "queued" and run["estimated_calls"] is not None
    # the guard defers it when a worker would start it: not started, the reason kept
    assert budgeted.web.plane.claim_next("w1") is None
    deferred = api.get(f"/runs/{run['id']}").json()
    assert deferred["status"] == "deferred"
    assert deferred["defer_reason"] and "00:00 UTC" in deferred["defer_reason"]
    assert deferred["resume_at"].startswith("2026-03-11T00:00:00")
    assert deferred["api_calls"] == 0 and deferred["started_at"] is None
