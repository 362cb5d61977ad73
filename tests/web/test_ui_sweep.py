"""Every page of the web UI at 1280x800 and 390x844 (issue 12 §1: "every page must work at
390 px with nothing cut off").

The pages are not listed by hand: the app's GET routes are enumerated (from its OpenAPI
description, which FastAPI builds from ``app.routes``; the REST API aside), and each must be
filled by :func:`visits` -- its path parameters taken from a realistic store
(:func:`build_store`: an administrator and a user, integrations in every state on v2 and v3,
jobs that succeeded, failed with a long message, run, wait for the quota or carry warnings,
notification channels and deliveries, an invitation, API tokens, audit events) -- or be named
in :data:`NOT_PAGES` with the reason it is no page. A page added later is thus swept
automatically, or this test fails naming it.

Each visit, at each size, in Debian's Chromium:

- answers the expected status (200, 403/404 for the error pages visited on purpose), at the
  expected address (redirects followed);
- the document does not scroll sideways (``scrollWidth <= clientWidth + 1``);
- no link, button, form control, summary, focusable region or table cell is cut off by an
  ancestor that hides its overflow, nor lies outside the viewport's width, unless a
  scrollable region on the way can scroll to it (the region then counts in its place), and
  no card's content is wider than the card;
- no text of a form lies over one of its controls (the field grids), no two labels of a
  chart overlap;
- every form control has a label (``<label>``, ``aria-label`` or ``aria-labelledby``).

At desktop size it also tabs through each page and checks that whatever takes the keyboard
focus shows it (an outline or a focus ring drawn as a box shadow).

Full-page screenshots: ``test-artifacts/screenshots/sweep/<page>-<width>x<height>.png``.
``CTCTSYNC_SWEEP_ONLY=integrations,job-failed`` visits only the pages so named (while fixing
them; the routes are still all checked to be filled).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

from ctctsync.control import services as svc
from ctctsync.control.context import context
from ctctsync.control.models import (
    PAUSED_REASON,
    NotificationDelivery,
    Run,
    RunLog,
    User,
)
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.control.services import audit
from ctctsync.control.services import notifications as notify
from ctctsync.web import create_app
from web.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, WebServer, create_admin
from web.test_browser_flow import SCREENSHOTS
from web.test_quota_api import API_KEY, KEY, NOON, add_v2_integration, freeze
from web.test_quota_ui import browser

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared with test_quota_ui

pytestmark = pytest.mark.browser

SHOTS = SCREENSHOTS / "sweep"
SIZES = ((1280, 800), (390, 844))
USER_EMAIL = "ann@example.com"
USER_PASSWORD = "correct horse battery"
TEMP_EMAIL = "reset@example.com"
"""A user whose password an administrator reset: they must choose a new one first."""
TEMP_PASSWORD = "temporary password 1"
LONG_ERROR = (
    "Constant Contact answered 503 Service Unavailable three times for GET "
    "/v3/reports/email_reports/9d3c1f6a-5b7e-4c61-8f2a-0d9e4b1c2a33/tracking/unique_opens"
    "?limit=500&cursor=bGltaXQ9NTAwJm5leHQ9MjAyNi0wMy0xMFQxMTowMDowMFo; the job stops and "
    "the next scheduled run tries again from the same bookmark, which keeps every row loaded "
    "so far."
)
LONG_NAME = "acme_newsletters_and_events_europe_wide"  # 39 of the 40 characters allowed

NOT_PAGES: dict[str, str] = {
    "/integrations/{integration_id}/status": "fragment the details page polls",
    "/jobs/{run_id}/summary": "fragment the job page polls",
    "/jobs/{run_id}/log": "log lines (JSON) the job page polls",
}
"""GET routes outside the REST API that are not pages, and why."""


@dataclass
class Store:
    """What :func:`build_store` made: the ids the routes' path parameters take."""

    active_v2: int
    active_v3: int
    pending_v3: int
    draft_v3: int
    draft_with_credentials: int
    paused: int
    needs_reauth: int
    users_own: int
    failed_job: str
    warnings_job: str
    running_job: str
    deferred_job: str
    invite_token: str


@dataclass(frozen=True)
class Visit:
    """One page load: ``route`` (the app's path pattern) as ``url`` by ``who``."""

    name: str
    route: str
    url: str
    who: str = "admin"
    """``admin``, ``user`` (no administrator), ``reset`` (must change their password),
    ``anonymous`` (signed out), ``fresh`` (signed out, a server with no user yet)."""
    status: int = 200
    lands: str | None = None
    """The path (and query) shown at the end, when the route redirects."""


def visits(s: Store) -> list[Visit]:
    """Every page of the UI, in an order that works: a draft's setup steps after
    ``/setup``, which puts the draft in the browser's session."""
    i = "/integrations"
    return [
        Visit("setup", "/setup", "/setup", who="fresh"),
        Visit("login", "/login", "/login", who="anonymous"),
        Visit("invite", "/invite", f"/invite?token={s.invite_token}", who="anonymous"),
        Visit("oauth-callback-error", "/oauth/callback",
              "/oauth/callback?error=server_error&error_description=try+later",
              who="anonymous", status=400),
        Visit("password-reset", "/account/password", "/account/password", who="reset"),
        Visit("home", "/", "/", lands=i),
        Visit("integrations", i, i),
        Visit("new-source", f"{i}/new", f"{i}/new"),
        Visit("new-details", f"{i}/new/constant-contact", f"{i}/new/constant-contact"),
        Visit("details-active-v2", f"{i}/{{integration_id}}", f"{i}/{s.active_v2}"),
        Visit("details-active-v3", f"{i}/{{integration_id}}", f"{i}/{s.active_v3}"),
        Visit("details-pending-v3", f"{i}/{{integration_id}}", f"{i}/{s.pending_v3}"),
        Visit("details-draft", f"{i}/{{integration_id}}", f"{i}/{s.draft_v3}"),
        Visit("details-paused", f"{i}/{{integration_id}}", f"{i}/{s.paused}"),
        Visit("details-needs-reauth", f"{i}/{{integration_id}}", f"{i}/{s.needs_reauth}"),
        Visit("details-missing", f"{i}/{{integration_id}}", f"{i}/999999", status=404),
        Visit("edit-v2", f"{i}/{{integration_id}}/edit", f"{i}/{s.active_v2}/edit"),
        Visit("edit-v3", f"{i}/{{integration_id}}/edit", f"{i}/{s.active_v3}/edit"),
        Visit("schema", f"{i}/{{integration_id}}/schema", f"{i}/{s.active_v2}/schema"),
        Visit("delete", f"{i}/{{integration_id}}/delete", f"{i}/{s.active_v2}/delete"),
        Visit("resync-confirm", f"{i}/{{integration_id}}/tables/{{table}}/resync",
              f"{i}/{s.active_v2}/tables/contact_tracking/resync"),
        Visit("reauthorize-v3", f"{i}/{{integration_id}}/setup/authorize",
              f"{i}/{s.needs_reauth}/setup/authorize"),
        Visit("credentials", f"{i}/{{integration_id}}/credentials",
              f"{i}/{s.paused}/credentials"),
        Visit("draft-resume", f"{i}/{{integration_id}}/setup", f"{i}/{s.draft_v3}/setup",
              lands=f"{i}/{s.draft_v3}/setup/authorize"),
        Visit("draft-details", f"{i}/{{integration_id}}/setup/details",
              f"{i}/{s.draft_v3}/setup/details"),
        Visit("draft-resume-tables", f"{i}/{{integration_id}}/setup",
              f"{i}/{s.draft_with_credentials}/setup",
              lands=f"{i}/{s.draft_with_credentials}/setup/tables"),
        Visit("draft-tables", f"{i}/{{integration_id}}/setup/tables",
              f"{i}/{s.draft_with_credentials}/setup/tables"),
        Visit("draft-fields", f"{i}/{{integration_id}}/setup/fields",
              f"{i}/{s.draft_with_credentials}/setup/fields"),
        Visit("job-failed", "/jobs/{run_id}", f"/jobs/{s.failed_job}"),
        Visit("job-warnings", "/jobs/{run_id}", f"/jobs/{s.warnings_job}"),
        Visit("job-running", "/jobs/{run_id}", f"/jobs/{s.running_job}"),
        Visit("job-deferred", "/jobs/{run_id}", f"/jobs/{s.deferred_job}"),
        Visit("quota", "/quota", "/quota"),
        Visit("quota-key", "/quota/keys/{fingerprint}", f"/quota/keys/{KEY}"),
        Visit("warehouse", "/warehouse", "/warehouse"),
        Visit("notifications", "/notifications", "/notifications"),
        Visit("tokens", "/tokens", "/tokens"),
        Visit("account", "/account", "/account"),
        Visit("account-password", "/account/password", "/account/password",
              lands="/account"),
        Visit("admin", "/admin", "/admin", lands="/admin/users"),
        Visit("admin-users", "/admin/users", "/admin/users"),
        Visit("admin-audit", "/admin/audit", "/admin/audit"),
        Visit("admin-application", "/admin/application", "/admin/application"),
        Visit("user-integrations", i, i, who="user"),
        Visit("user-details", f"{i}/{{integration_id}}", f"{i}/{s.users_own}", who="user"),
        Visit("user-notifications", "/notifications", "/notifications", who="user"),
        Visit("user-quota", "/quota", "/quota", who="user"),
        Visit("user-admin-refused", "/admin/users", "/admin/users", who="user", status=403),
    ]


def page_routes(web: WebServer) -> set[str]:
    """The path of every GET route of the app but the REST API's.

    Read from the app's OpenAPI description, which FastAPI builds from ``app.routes``
    (its routers' routes are nested there since FastAPI 0.165, behind private types). Routes
    kept out of it (``include_in_schema=False``: the probes and ``/metrics``) are no pages.
    """
    app = create_app(web.settings, web.plane)  # for its routes: never served, nothing starts
    return {
        path
        for path, operations in app.openapi()["paths"].items()
        if "get" in operations and not path.startswith("/api/")
    }


# ----------------------------------------------------------------------------- the store


def _user(db: Any, email: str) -> User:
    user = db.scalar(sa.select(User).where(User.email == email))
    assert user is not None
    return user


def _v3_credentials(web: WebServer) -> str:
    with web.plane.session() as db:
        return context(db).box.encrypt_json({
            "access_token": "v3-access-" + "a" * 30,
            "refresh_token": "v3-refresh-" + "r" * 30,
            "expires_at": (NOON + timedelta(hours=20)).isoformat(),
            "scope": "contact_data campaign_data offline_access account_read",
            "obtained_at": (NOON - timedelta(hours=4)).isoformat(),
        })


def _integration(
    web: WebServer, name: str, version: str, *, owner: str = ADMIN_EMAIL,
    draft: bool = False, **fields: Any,
) -> int:
    with web.plane.session() as db:
        integ = svc.create_integration(
            db, _user(db, owner),
            IntegrationCreate(name=name, api_version=version, frequency_hours=6),  # type: ignore[arg-type]
            draft=draft,
        )
        for key, value in fields.items():
            setattr(integ, key, value)
        db.commit()
        return integ.id


def _run(web: WebServer, integration_id: int, status: str, ago_minutes: int, **fields: Any) -> str:
    """A stored job (as a worker leaves it), finished ``ago_minutes`` before noon."""
    start = NOON - timedelta(minutes=ago_minutes)
    finished = status not in ("running", "queued", "deferred")
    with web.plane.session() as db:
        run = Run(
            integration_id=integration_id, trigger="manual", status=status,
            kind="incremental", created_at=start - timedelta(seconds=5),
            started_at=None if status in ("queued", "deferred") else start,
            finished_at=start + timedelta(minutes=3, seconds=12) if finished else None,
            heartbeat_at=NOON if status == "running" else None,
            key_fingerprint=KEY, **fields,
        )
        db.add(run)
        db.flush()
        run_id = run.id
        integ = run.integration
        integ.last_run_id = run_id
        db.commit()
        return run_id


def build_store(web: WebServer) -> Store:
    """A store as a team that has used ctctsync for a while has it."""
    freeze(web, NOON)
    create_admin(web.plane)
    with web.plane.session() as db:
        svc.create_user(db, USER_EMAIL, USER_PASSWORD)
        svc.create_user(db, TEMP_EMAIL, TEMP_PASSWORD)
        _user(db, TEMP_EMAIL).must_change_password = True
        db.commit()
    v3_creds = _v3_credentials(web)
    v2_creds = web.plane.context.box.encrypt_json(
        {"api_key": API_KEY, "access_token": "acme-access-token-" + "t" * 20})

    active_v2 = add_v2_integration(web, LONG_NAME)
    tables = ("contacts", "contact_lists", "contact_tracking")
    failed = _run(web, active_v2, "failed", 50, rows={"contacts": 12_345}, api_calls=1_234,
                  error=LONG_ERROR, failure_type="transient",
                  table_status={"contacts": "succeeded", "contact_lists": "failed"})
    warned = _run(web, active_v2, "succeeded", 30, rows=dict.fromkeys(tables, 98_765),
                  api_calls=321, table_status=dict.fromkeys(tables, "succeeded"),
                  table_calls=dict.fromkeys(tables, 107),
                  warnings=[
                      "contacts: 3 fields Constant Contact started sending are not loaded "
                      "(custom_field_7f3a9c2e_4b1d_4e8f_9a6b_2c5d8e1f0a3b, sms_consent, "
                      "preferred_language_and_region_setting); see the schema page.",
                      "contact_tracking: campaign 1100394165290 has no report yet.",
                  ])
    running = _run(web, active_v2, "running", 2, rows={"contacts": 4_000},
                   table_status={"contacts": "running"}, api_calls=12, worker_id="worker-1")
    deferred = _run(web, active_v2, "deferred", 1,
                    defer_reason="The key's daily quota (10,000 calls) is spent; the job "
                    "starts after it resets at 00:00 UTC.")
    with web.plane.session() as db:
        for seq, (level, message) in enumerate(start=1, iterable=[
            ("INFO", "Job started: 3 tables, incremental since 2026-03-10 11:00:00 UTC"),
            ("INFO", "contacts: 12,345 rows in 41.2 s (123 API calls)"),
            ("ERROR", LONG_ERROR),
        ]):
            db.add(RunLog(run_id=failed, seq=seq, ts=NOON - timedelta(minutes=50 - seq),
                          level=level, message=message))
        db.commit()

    active_v3 = _integration(web, "events_v3", "v3", state="active", auth_method="oauth",
                             credentials_encrypted=v3_creds, activated_at=NOON - timedelta(days=9),
                             next_run_at=NOON + timedelta(hours=2))
    _run(web, active_v3, "succeeded", 240, rows={"contacts": 5_000, "events": 12},
         table_status={"contacts": "succeeded", "events": "succeeded"}, api_calls=60)
    pending_v3 = _integration(web, "newsletter_v3", "v3")
    draft_v3 = _integration(web, "half_finished", "v3", draft=True)
    draft_creds = _integration(web, "authorized_draft", "v2", draft=True, auth_method="manual",
                               credentials_encrypted=v2_creds)
    paused = _integration(web, "paused_v2", "v2", state="paused", state_reason=PAUSED_REASON,
                          auth_method="manual", credentials_encrypted=v2_creds,
                          activated_at=NOON - timedelta(days=30))
    _run(web, paused, "succeeded", 60 * 24 * 3, rows={"contacts": 100},
         table_status={"contacts": "succeeded"}, api_calls=7)
    reauth = _integration(web, "revoked_v3", "v3", state="needs_reauth",
                          state_reason="Constant Contact refused the authorization "
                          "(invalid_grant): re-authorize the integration.",
                          auth_method="oauth", credentials_encrypted=v3_creds,
                          activated_at=NOON - timedelta(days=60))
    _run(web, reauth, "failed", 120, error="The refresh token was revoked (invalid_grant).",
         failure_type="auth")
    users_own = add_v2_integration(web, "anns_account", owner=USER_EMAIL, frequency_hours=24)

    with web.plane.session() as db:
        admin, user = _user(db, ADMIN_EMAIL), _user(db, USER_EMAIL)
        _invite, invite_token = svc.invite_user(db, admin, "bob@example.com")
        svc.create_api_token(db, admin, "dagster production pipeline")
        svc.create_api_token(db, user, "ann's laptop")
        svc.lock_account(db, "mallory@example.com", address="203.0.113.7")
        for event, email in (("sign_in_failed", USER_EMAIL), ("sign_in", ADMIN_EMAIL)):
            audit.record(db, event, email=email, address="198.51.100.23")  # type: ignore[arg-type]
        db.commit()
        hook, _secret = notify.create_channel(
            db, admin, "webhook", "Data team on-call webhook",
            "https://hooks.example.com/services/ctctsync/production/alerts")
        slack, _ = notify.create_channel(
            db, admin, "slack", "#data-alerts", "https://hooks.slack.example/services/T0/B0/x")
        notify.create_channel(db, user, "webhook", "Ann's hook", "https://ann.example.com/h")
        notify.set_choices(db, admin, active_v2, ["failure", "needs_reauth", "recovery"])
        for channel, status, error in (
            (hook.id, "sent", None),
            (slack.id, "failed", "HTTP 500 from hooks.slack.example after 5 attempts: "
             + "upstream connect error or disconnect/reset before headers. " * 3),
            (hook.id, "pending", "Connection refused (will try again)"),
        ):
            db.add(NotificationDelivery(
                channel_id=channel, user_id=admin.id, integration_id=active_v2,
                run_id=failed, event="failure", dedupe_key=f"failure:{failed}:{status}",
                subject=f"{LONG_NAME}: job failed", body=LONG_ERROR, status=status,
                attempts=5 if status == "failed" else 1,
                created_at=NOON - timedelta(minutes=49), last_error=error,
                last_attempt_at=NOON - timedelta(minutes=40),
                next_attempt_at=NOON + timedelta(minutes=5) if status == "pending" else None,
                sent_at=NOON - timedelta(minutes=48) if status == "sent" else None,
            ))
        db.commit()
    return Store(active_v2, active_v3, pending_v3, draft_v3, draft_creds, paused, reauth,
                 users_own, failed, warned, running, deferred, invite_token)


# ----------------------------------------------------------------------------- the checks

# What is wrong with the page's layout, measured in the browser (see the module docstring).
LAYOUT = r"""() => {
  const root = document.documentElement;
  const vw = root.clientWidth;
  const out = {overflow: root.scrollWidth - vw, clipped: [], overlaps: [], unlabelled: []};
  const name = el => {
    const text = (el.innerText || el.value || el.getAttribute('aria-label') || '')
      .trim().replace(/\s+/g, ' ').slice(0, 40);
    return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
      + (el.className && typeof el.className === 'string'
         ? '.' + el.className.trim().split(/\s+/).join('.') : '')
      + (text ? ` "${text}"` : '');
  };
  const shown = el => {
    const r = el.getBoundingClientRect();
    return r.width > 1 && r.height > 1 && getComputedStyle(el).visibility !== 'hidden'
      && !el.closest('.visually-hidden');
  };
  const scrolls = v => v === 'auto' || v === 'scroll';
  const ITEMS = 'a[href], button, input:not([type=hidden]), select, textarea, summary, '
    + '[tabindex]:not([tabindex="-1"]), th, td';
  for (const el of document.querySelectorAll(ITEMS)) {
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    const box = {left: r.left, right: r.right, top: r.top, bottom: r.bottom};
    let problem = null;
    for (let a = el.parentElement; a && a !== document.body && !problem; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
      const ar = a.getBoundingClientRect();
      if (!scrolls(s.overflowX) && (box.left < ar.left - 1 || box.right > ar.right + 1)) {
        problem = `cut off sideways by ${name(a)} (overflow-x: ${s.overflowX})`;
      } else if (!scrolls(s.overflowY) && (box.top < ar.top - 1 || box.bottom > ar.bottom + 1)) {
        problem = `cut off vertically by ${name(a)} (overflow-y: ${s.overflowY})`;
      }
      // a region that scrolls reaches what it holds: from here on, its own box counts
      if (scrolls(s.overflowX)) { box.left = ar.left; box.right = ar.right; }
      if (scrolls(s.overflowY)) { box.top = ar.top; box.bottom = ar.bottom; }
    }
    if (!problem && (box.left < -1 || box.right > vw + 1)) {
      problem = `outside the viewport (${Math.round(box.left)}..${Math.round(box.right)} of ${vw})`;
    }
    if (problem) out.clipped.push(`${name(el)}: ${problem}`);
  }
  // a card's content stays inside the card (unless the card scrolls it)
  for (const card of document.querySelectorAll('.card')) {
    if (!shown(card) || scrolls(getComputedStyle(card).overflowX)) continue;
    const over = card.scrollWidth - card.clientWidth;
    if (over > 1) {
      out.clipped.push(`${name(card).slice(0, 60)}: content ${over}px wider than the card`);
    }
  }
  const CONTROLS = 'input:not([type=hidden]), select, textarea';
  for (const form of document.querySelectorAll('form')) {
    const controls = [...form.querySelectorAll(CONTROLS)].filter(shown);
    if (!controls.length) continue;
    const walker = document.createTreeWalker(form, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const t = walker.currentNode;
      const parent = t.parentElement;
      if (!t.textContent.trim() || parent.closest('select, textarea, button, option')) continue;
      if (!shown(parent)) continue;
      const range = document.createRange();
      range.selectNodeContents(t);
      for (const tr of range.getClientRects()) {
        for (const c of controls) {
          const cr = c.getBoundingClientRect();
          const w = Math.min(tr.right, cr.right) - Math.max(tr.left, cr.left);
          const h = Math.min(tr.bottom, cr.bottom) - Math.max(tr.top, cr.top);
          if (w > 2 && h > 2) {
            out.overlaps.push(`"${t.textContent.trim().slice(0, 40)}" over ${name(c)}`);
          }
        }
      }
    }
  }
  // a chart's labels: no two texts of one SVG overlap (tick labels against axis titles)
  for (const svg of document.querySelectorAll('svg')) {
    const texts = [...svg.querySelectorAll('text')].filter(shown);
    texts.forEach((a, i) => texts.slice(i + 1).forEach(b => {
      const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
      const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
      const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
      if (w > 1 && h > 1) {
        out.overlaps.push(`chart text "${a.textContent}" over "${b.textContent}"`);
      }
    }));
  }
  for (const c of document.querySelectorAll(CONTROLS)) {
    if (['submit', 'button', 'reset', 'image'].includes(c.type)) continue;
    if (!c.getClientRects().length) continue;  // not rendered (a hidden username for managers)
    const named = c.labels.length || c.getAttribute('aria-label')
      || c.getAttribute('aria-labelledby');
    if (!named) out.unlabelled.push(name(c));
  }
  out.clipped = [...new Set(out.clipped)];
  out.overlaps = [...new Set(out.overlaps)];
  return out;
}"""

# The element that has the keyboard focus, and whether it shows it.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  // focus inside a control's own parts (a date field's calendar button): the browser's to draw
  if (!el.matches(':focus')) return {name: '', shown: true};
  const s = getComputedStyle(el);
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 1;
  const ring = s.boxShadow && s.boxShadow !== 'none';
  const text = (el.innerText || el.value || el.getAttribute('aria-label') || '')
    .trim().replace(/\\s+/g, ' ').slice(0, 30);
  return {
    name: el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (text ? ` "${text}"` : ''),
    shown: outline || ring,
  };
}"""
TABS = 400
"""At most this many Tab presses a page for the focus check: it stops when the focus leaves
the page, so every focusable element is checked (the edit page has ~200)."""


def focus_problems(page: Page) -> list[str]:
    """Elements that take the keyboard focus without showing it."""
    page.mouse.click(1, 1)  # start from the document, as after the page opened
    unseen: list[str] = []
    for _ in range(TABS):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None:
            break
        if not focused["shown"] and focused["name"] not in unseen:
            unseen.append(focused["name"])
    return unseen


def sign_in(context: BrowserContext, base: str, email: str, password: str) -> None:
    page = context.new_page()
    page.goto(base + "/login")
    page.fill("#email", email)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert "/login" not in page.url, f"{email} could not sign in"
    page.close()


def test_every_page_at_desktop_and_phone_sizes(
    browser: Browser, web: WebServer, web_factory: Callable[..., WebServer]
) -> None:
    store = build_store(web)
    fresh = web_factory(workers=0)  # no user yet: the first administrator's setup page
    planned = visits(store)

    routes = page_routes(web)
    unfilled = routes - {v.route for v in planned} - NOT_PAGES.keys()
    assert not unfilled, (
        f"GET routes the sweep does not visit: {sorted(unfilled)}. Add a Visit for each to "
        "visits() (or, if it is no page, a reason to NOT_PAGES)."
    )
    stale = {v.route for v in planned} - routes
    assert not stale, f"visits of routes the app no longer has: {sorted(stale)}"

    only = os.environ.get("CTCTSYNC_SWEEP_ONLY", "").split(",")
    if only != [""]:  # to look again at a few pages while fixing them (comma-separated names)
        planned = [v for v in planned if v.name in only]
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        if only == [""] or old.name.rsplit("-", 1)[0] in only:
            old.unlink()
    accounts = {"admin": (ADMIN_EMAIL, ADMIN_PASSWORD), "user": (USER_EMAIL, USER_PASSWORD),
                "reset": (TEMP_EMAIL, TEMP_PASSWORD)}
    problems: list[str] = []
    focus: dict[str, list[str]] = {}
    for width, height in SIZES:
        size = f"{width}x{height}"
        contexts: dict[str, BrowserContext] = {}
        for visit in planned:
            context = contexts.get(visit.who)
            if context is None:
                context = contexts[visit.who] = browser.new_context(
                    viewport={"width": width, "height": height})
                context.set_default_timeout(15_000)
                if visit.who in accounts:
                    sign_in(context, web.base_url, *accounts[visit.who])
            base = fresh.base_url if visit.who == "fresh" else web.base_url
            label = f"{visit.name}-{size}"
            page = context.new_page()
            errors: list[str] = []

            def on_console(msg: ConsoleMessage, errors: list[str] = errors) -> None:
                if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
                    errors.append(f"console: {msg.text}")

            page.on("console", on_console)
            page.on("pageerror", lambda exc, errors=errors: errors.append(f"script: {exc}"))
            response = page.goto(base + visit.url)
            assert response is not None
            landed = urlsplit(page.url)
            where = landed.path + (f"?{landed.query}" if landed.query else "")
            if response.status != visit.status:
                problems.append(f"{label}: answered {response.status}, not {visit.status}")
            if where != (visit.lands or visit.url):
                problems.append(f"{label}: ended at {where}, not {visit.lands or visit.url}")
            page.screenshot(path=str(SHOTS / f"{label}.png"), full_page=True)
            layout = page.evaluate(LAYOUT)
            if layout["overflow"] > 1:
                problems.append(f"{label}: the page is {layout['overflow']}px too wide")
            problems += [f"{label}: {item}" for item in layout["clipped"]]
            problems += [f"{label}: overlap: {item}" for item in layout["overlaps"]]
            problems += [f"{label}: no label: {item}" for item in layout["unlabelled"]]
            problems += [f"{label}: {e}" for e in errors]
            if width > 1000:
                unseen = focus_problems(page)
                if unseen:
                    focus[visit.name] = unseen
            page.close()
        for context in contexts.values():
            context.close()
    problems += [f"{name}: focus not shown on {', '.join(els)}" for name, els in focus.items()]
    assert problems == [], "\n".join(problems)
