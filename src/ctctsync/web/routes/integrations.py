"""Integrations: the list, the add-integration steps, details, edit, actions, delete.

Adding an integration follows the product spec's steps, one page each:

1. ``/integrations/new`` — choose the source (Constant Contact);
2. ``/integrations/new/constant-contact`` — name, replication frequency, history. Submitting
   creates the integration as a **draft** (the scheduler never runs one: its selection is
   half-made) and remembers it in the session as the setup in progress; the step pills
   lead back here (``/integrations/{id}/setup/details``) while it is a draft;
3. ``/integrations/{id}/setup/authorize`` — "Authorize" sends the browser to Constant
   Contact's authorize page (``/oauth/callback`` brings it back; a v3 integration uses the
   authorization-code flow with PKCE, and a "Deny" there comes back here with "Try
   again"), or (v2, legacy) enter an API key and access token instead;
4. ``/integrations/{id}/setup/tables`` — which tables;
5. ``/integrations/{id}/setup/fields`` — which fields of each; "Submit" saves the selection
   and finishes the setup: draft -> Pending until its first job loads data.

A draft left half-way is listed as "Setup not finished" with Continue
(``/integrations/{id}/setup``), which returns to the step it stopped at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.control.errors import QuotaWouldDefer, ServiceError, ValidationFailed
from ctctsync.control.models import (
    ACTIVE_RUN_STATUSES,
    API_VERSIONS,
    DEFAULT_API_VERSION,
    ApiVersion,
    Integration,
    Run,
)
from ctctsync.control.schemas import (
    IntegrationBudget,
    IntegrationCreate,
    IntegrationUpdate,
    KeyBudget,
    ManualCredentials,
    validated,
)
from ctctsync.control.services import authorization as auth
from ctctsync.control.services import quota
from ctctsync.control.services.authorization import new_binding
from ctctsync.control.services.integrations import new_fields
from ctctsync.control.services.runs import finished_runs
from ctctsync.control.services.switch import begin_switch_to_v3
from ctctsync.control.services.tokens import token_status
from ctctsync.control.services.warehouse import integration_table_rows
from ctctsync.tables import TABLES, Table, tables_for
from ctctsync.validation import REPLICATION_FREQUENCIES_HOURS
from ctctsync.web.deps import CurrentUser, Db, IntegrationId
from ctctsync.web.forms import (
    FieldChoice,
    Form,
    TableChoice,
    chosen_selection,
    chosen_tables,
    field_messages,
    form_str,
)
from ctctsync.web.history import (
    HISTORY_RUNS,
    NARROW_WIDTH,
    RunPoint,
    history_chart,
    table_summaries,
)
from ctctsync.web.oauth_errors import explain_oauth_error
from ctctsync.web.quota import UsageBar, events_sentence, polling_sentence
from ctctsync.web.security import verify_csrf
from ctctsync.web.status import IntegrationFacts, integration_message
from ctctsync.web.templating import flash, render

router = APIRouter(prefix="/integrations", dependencies=[Depends(verify_csrf)])

OAUTH_BINDING_KEY = "oauth_binding"
"""Session key of the nonce that binds OAuth authorizations to this browser session."""
SETUP_KEY = "setup"
"""Session key of the add-integration draft: ``{"id": int, "tables": [names]}``."""
CC_ERROR_KEY = "oauth_error"
"""Session key of the error Constant Contact sent back to the callback (shown once)."""

STEPS = ("Source", "Name & schedule", "Authorize", "Tables", "Fields")

CAMPAIGN_TABLES = frozenset({"contact_tracking", "email_campaign_summary"})
"""Tables read per campaign, whose polling follows the campaign tiers."""


def _setup(request: Request, integration_id: int) -> dict[str, Any] | None:
    draft = request.session.get(SETUP_KEY)
    if isinstance(draft, dict) and draft.get("id") == integration_id:
        return draft
    return None


def in_setup(request: Request, integration_id: int) -> bool:
    """True while ``integration_id`` is the add-integration draft of this session."""
    return _setup(request, integration_id) is not None


def _ctx(step: int, **values: Any) -> dict[str, Any]:
    links = step_links(values.get("integ"), step)
    return {"section": "integrations", "steps": STEPS, "step": step, "step_links": links, **values}


def step_links(integ: Integration | None, step: int) -> dict[int, str]:
    """The steps before ``step`` a draft may go back to, by index: its name and schedule,
    its authorization, its tables (never the source: that would start another one)."""
    if integ is None or not integ.is_draft:
        return {}
    links = {1: "details", 2: "authorize", 3: "tables"}
    return {i: f"/integrations/{integ.id}/setup/{page}" for i, page in links.items() if i < step}


def _go(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def version_of(integ: Integration) -> ApiVersion:
    """The integration's API version (``v2`` for anything unexpected: the old behaviour)."""
    return "v3" if integ.api_version == "v3" else "v2"


def _fields(table: Table, cols: list[str] | None) -> list[FieldChoice]:
    fields = []
    for col in table.columns:
        locked = col.name in table.required_columns
        why = "key" if col.name in table.primary_key else ("change cursor" if locked else "")
        checked = locked or cols is None or col.name in cols
        fields.append(FieldChoice(column=col, checked=checked, locked=locked, why_locked=why))
    return fields


def picker(
    selection: dict[str, list[str] | None] | None,
    version: ApiVersion,
    *,
    default_all: bool = False,
) -> list[TableChoice]:
    """The table/field picker of an integration reading ``version``: each table it can
    read, as that version fills it (its columns, its types), in registry order."""
    choices = []
    for name, table in tables_for(version).items():
        chosen = (selection is None and default_all) or (
            selection is not None and name in selection
        )
        cols = None if selection is None else selection.get(name)
        choices.append(TableChoice(table=table, checked=chosen, fields=_fields(table, cols)))
    return choices


def unavailable_tables(version: ApiVersion) -> list[tuple[Table, str]]:
    """The tables ``version`` cannot read, each with why (shown, never selectable)."""
    return [
        (t, t.unavailable_reason(version)) for t in TABLES.values() if not t.available_in(version)
    ]


def selection_for(
    form_selection: dict[str, list[str] | None], version: ApiVersion
) -> dict[str, list[str] | None]:
    """A submitted selection with "every column the version has" stored as None (all)."""
    available = tables_for(version)
    out: dict[str, list[str] | None] = {}
    for name, cols in form_selection.items():
        table = available.get(name)
        every = table is not None and cols is not None and set(cols) >= set(table.column_names)
        out[name] = None if every else cols
    return out


# --------------------------------------------------------------------------- list


@router.get("")
def list_page(request: Request, db: Db, user: CurrentUser) -> Response:
    """Every integration with its state, last job and next run."""
    items = svc.list_integrations(db, user)
    return render(
        request,
        "integrations/list.html",
        {"section": "integrations", "items": items, "now": svc.context(db).now()},
    )


# --------------------------------------------------------------------------- add


@router.get("/new")
def choose_source(request: Request, user: CurrentUser) -> Response:
    """Step 1: the sources ctctsync can replicate (Constant Contact)."""
    return render(request, "integrations/new_source.html", _ctx(0))


def _name_form(
    request: Request,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
    integ: Integration | None = None,
) -> Response:
    """Step 2's form: a new integration's, or (``integ``) a draft's, changed again."""
    return render(
        request,
        "integrations/new_details.html",
        _ctx(
            1,
            values=values,
            errors=errors,
            frequencies=REPLICATION_FREQUENCIES_HOURS,
            versions=API_VERSIONS,
            integ=integ,
            action=f"/integrations/{integ.id}/setup/details"
            if integ is not None
            else "/integrations/new/constant-contact",
        ),
        status_code=status_code,
    )


def _name_values(form: Any) -> dict[str, Any]:
    return {
        "name": form_str(form, "name"),
        "frequency_hours": form_str(form, "frequency_hours"),
        "history_start": form_str(form, "history_start"),
        "api_version": form_str(form, "api_version") or DEFAULT_API_VERSION,
    }


@router.get("/new/constant-contact")
def details_page(request: Request, user: CurrentUser) -> Response:
    """Step 2: name, frequency (24 h suggested) and history."""
    a_year_ago = datetime.now(UTC).date() - timedelta(days=365)
    values = {
        "name": "",
        "frequency_hours": 24,
        "history_start": a_year_ago.isoformat(),
        "api_version": DEFAULT_API_VERSION,
    }
    return _name_form(request, values, {})


@router.post("/new/constant-contact")
def create(request: Request, db: Db, user: CurrentUser, form: Form) -> Response:
    """Create the integration (a draft until its setup is submitted), then authorize."""
    values = _name_values(form)
    try:
        data = validated(IntegrationCreate, **values)
        integ = svc.create_integration(db, user, data, draft=True)
    except ValidationFailed as exc:
        errors = field_messages(exc.errors) or {"form": exc.message}
        return _name_form(request, values, errors, status_code=422)
    auth.settle_new_integration(db, integ, data.api_version, tables_given=False)
    request.session[SETUP_KEY] = {"id": integ.id, "tables": list(tables_for(data.api_version))}
    return _go(f"/integrations/{integ.id}/setup/authorize")


@router.get("/{integration_id}/setup/details")
def draft_details_page(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId
) -> Response:
    """Step 2 again, for a draft: its name, frequency, API version and history."""
    integ = svc.get_integration(db, user, integration_id)
    if not integ.is_draft:
        return _go(f"/integrations/{integ.id}/edit")
    values = {
        "name": integ.name,
        "frequency_hours": integ.frequency_hours,
        "history_start": integ.history_start.isoformat(),
        "api_version": version_of(integ),
    }
    return _name_form(request, values, {}, integ=integ)


@router.post("/{integration_id}/setup/details")
def update_draft_details(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId, form: Form
) -> Response:
    """Save step 2 of a draft, then on to the authorization (kept unless the API version
    changed: credentials belong to one version)."""
    integ = svc.get_integration(db, user, integration_id)
    if not integ.is_draft:
        return _go(f"/integrations/{integ.id}/edit")
    values = _name_values(form)
    version_before = integ.api_version
    try:
        data = validated(IntegrationCreate, **values)
        integ = svc.update_draft(db, integ, data)
    except ValidationFailed as exc:
        db.rollback()
        errors = field_messages(exc.errors) or {"form": exc.message}
        return _name_form(request, values, errors, status_code=422, integ=integ)
    if integ.api_version != version_before or not in_setup(request, integ.id):
        request.session[SETUP_KEY] = {"id": integ.id, "tables": list(integ.tables)}
    return _go(f"/integrations/{integ.id}/setup/authorize")


@router.get("/{integration_id}/setup")
def resume_setup(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId
) -> Response:
    """Continue an unfinished setup (from any browser): authorize, or choose tables."""
    integ = svc.get_integration(db, user, integration_id)
    if not integ.is_draft:
        if in_setup(request, integ.id):
            request.session.pop(SETUP_KEY, None)
        return _go(f"/integrations/{integ.id}/edit")
    if not in_setup(request, integ.id):
        request.session[SETUP_KEY] = {"id": integ.id, "tables": list(integ.tables)}
    step = "tables" if integ.has_credentials else "authorize"
    return _go(f"/integrations/{integ.id}/setup/{step}")


@router.get("/{integration_id}/setup/authorize")
def authorize_page(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId
) -> Response:
    """Step 3: authorize ctctsync on Constant Contact (or enter credentials by hand)."""
    integ = svc.get_integration(db, user, integration_id)
    outcome = request.query_params.get("outcome", "")
    cc_error = request.session.pop(CC_ERROR_KEY, None) if outcome == "error" else None
    error, description = (
        (str(cc_error[0]), str(cc_error[1]))
        if isinstance(cc_error, list) and len(cc_error) == 2
        else (str(cc_error), "")
    )
    return render(
        request,
        "integrations/setup_authorize.html",
        _ctx(
            2,
            integ=integ,
            creds=svc.credentials_status(integ),
            in_setup=in_setup(request, integ.id),
            scopes=auth.V3_SCOPES,
            denied=outcome == "denied",
            expired_minutes=svc.context(db).settings.oauth_state_ttl_seconds // 60
            if outcome == "expired"
            else None,
            cc_error=explain_oauth_error(error) if cc_error else None,
            cc_answer=f"{error}: {description}" if description else error,
            token=token_status(svc.context(db), integ),
        ),
    )


@router.post("/{integration_id}/authorize")
def authorize(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId
) -> Response:
    """Send the browser to Constant Contact's authorize page (also "Re-authorize")."""
    integ = svc.get_integration(db, user, integration_id)
    try:
        url = svc.start_authorization(db, integ, binding=oauth_binding(request))
    except ServiceError as exc:
        flash(request, f"Could not start the authorization: {exc.message}", "error")
        back = "setup/authorize" if in_setup(request, integ.id) else ""
        return _go(f"/integrations/{integ.id}/{back}".rstrip("/"))
    return _go(url)


@router.get("/{integration_id}/credentials")
def credentials_page(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId
) -> Response:
    """The alternative to OAuth: paste an API key and access token."""
    integ = svc.get_integration(db, user, integration_id)
    return render(
        request,
        "integrations/credentials.html",
        _ctx(2, integ=integ, errors={}, api_key="", in_setup=in_setup(request, integ.id)),
    )


@router.post("/{integration_id}/credentials")
def save_credentials(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId, form: Form
) -> Response:
    """Check and store the pasted credentials. A refused form keeps the API key typed (to
    fix the token without pasting the key again) but never echoes the access token."""
    integ = svc.get_integration(db, user, integration_id)
    errors: dict[str, str] = {}
    api_key = form_str(form, "api_key")
    try:
        # The same rules as the REST API: printable ASCII, no spaces or line breaks.
        data = validated(
            ManualCredentials,
            api_key=api_key,
            access_token=form_str(form, "access_token"),
        )
        svc.set_manual_credentials(db, integ, data.api_key, data.access_token)
    except ValidationFailed as exc:
        errors = field_messages(exc.errors) or {"access_token": exc.message}
    if errors:
        return render(
            request,
            "integrations/credentials.html",
            _ctx(
                2,
                integ=integ,
                errors=errors,
                api_key=api_key,
                in_setup=in_setup(request, integ.id),
            ),
            status_code=422,
        )
    if in_setup(request, integ.id):
        # a key and token made it a v2 integration: its tables are v2's now
        request.session[SETUP_KEY] = {"id": integ.id, "tables": list(integ.tables)}
    return after_authorization(request, integ)


def oauth_binding(request: Request) -> str:
    """This browser session's OAuth nonce (made on first use): an authorization started
    here completes only from a session presenting it (``/oauth/callback``)."""
    nonce = request.session.get(OAUTH_BINDING_KEY)
    if not isinstance(nonce, str) or not nonce:
        nonce = request.session[OAUTH_BINDING_KEY] = new_binding()
    return nonce


def after_authorization(request: Request, integ: Integration) -> Response:
    """Where to go once credentials are stored: the next setup step, or the details page."""
    if integ.access_problems:
        flash(
            request,
            "Constant Contact is authorized, but not for everything: "
            + "; ".join(integ.access_problems)
            + ".",
            "error",
        )
    if in_setup(request, integ.id):
        return _go(f"/integrations/{integ.id}/setup/tables")
    if not integ.access_problems:
        flash(request, "Constant Contact is authorized again.")
    return _go(f"/integrations/{integ.id}")


def _tables_form(
    request: Request, integ: Integration, chosen: list[str], errors: dict[str, str], code: int = 200
) -> Response:
    selection: dict[str, list[str] | None] = dict.fromkeys(chosen)
    version = version_of(integ)
    return render(
        request,
        "integrations/setup_tables.html",
        _ctx(
            3,
            integ=integ,
            choices=picker(selection, version),
            unavailable=unavailable_tables(version),
            errors=errors,
        ),
        status_code=code,
    )


@router.get("/{integration_id}/setup/tables")
def tables_page(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId
) -> Response:
    """Step 4: the available tables, each with its purpose and replication type."""
    integ = svc.get_integration(db, user, integration_id)
    draft = _setup(request, integ.id)
    if draft is None:
        return _go(f"/integrations/{integ.id}/edit")
    if not integ.has_credentials:
        return _go(f"/integrations/{integ.id}/setup/authorize")
    default = list(tables_for(version_of(integ)))
    return _tables_form(request, integ, list(draft.get("tables") or default), {})


@router.post("/{integration_id}/setup/tables")
def choose_tables(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId, form: Form
) -> Response:
    """Remember the chosen tables, then ask for their fields."""
    integ = svc.get_integration(db, user, integration_id)
    draft = _setup(request, integ.id)
    if draft is None:
        return _go(f"/integrations/{integ.id}/edit")
    tables = chosen_tables(form)
    try:
        validated(IntegrationUpdate, tables=dict.fromkeys(tables))
        auth.check_selection(integ, dict.fromkeys(tables))
    except ValidationFailed as exc:
        return _tables_form(request, integ, [], field_messages(exc.errors), 422)
    request.session[SETUP_KEY] = {"id": integ.id, "tables": tables}
    return _go(f"/integrations/{integ.id}/setup/fields")


@router.get("/{integration_id}/setup/fields")
def fields_page(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId
) -> Response:
    """Step 5: the fields of each chosen table (all selected; keys locked)."""
    integ = svc.get_integration(db, user, integration_id)
    draft = _setup(request, integ.id)
    if draft is None:
        return _go(f"/integrations/{integ.id}/edit")
    version = version_of(integ)
    selection: dict[str, list[str] | None] = dict.fromkeys(
        draft.get("tables") or tables_for(version)
    )
    choices = [c for c in picker(selection, version) if c.checked]
    return render(
        request,
        "integrations/setup_fields.html",
        _ctx(4, integ=integ, choices=choices, errors={}),
    )


@router.post("/{integration_id}/setup/fields")
def submit(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId, form: Form
) -> Response:
    """Save the table and field selection and start the integration (Pending)."""
    integ = svc.get_integration(db, user, integration_id)
    draft = _setup(request, integ.id)
    if draft is None:
        return _go(f"/integrations/{integ.id}")
    version = version_of(integ)
    tables = [t for t in (draft.get("tables") or []) if t in TABLES]
    selection = selection_for(chosen_selection(form, tables), version)
    try:
        auth.check_selection(integ, selection)
        integ = svc.update_integration(db, integ, validated(IntegrationUpdate, tables=selection))
    except ValidationFailed as exc:
        choices = [c for c in picker(selection, version) if c.checked]
        return render(
            request,
            "integrations/setup_fields.html",
            _ctx(4, integ=integ, choices=choices, errors=field_messages(exc.errors)),
            status_code=422,
        )
    integ = svc.finish_setup(db, integ)
    request.session.pop(SETUP_KEY, None)
    # No word on the state here: the state card says it, and changes when the state does.
    flash(request, f"Integration {integ.name} is set up.")
    return _go(f"/integrations/{integ.id}")


# --------------------------------------------------------------------------- details


def _details_ctx(request: Request, db: Db, user: CurrentUser, integ: Integration) -> dict[str, Any]:
    runs = svc.list_runs(db, user, integ, limit=25)
    now = svc.context(db).now()
    in_flight = any(r.status in ACTIVE_RUN_STATUSES for r in runs)
    waiting_first = integ.state == "pending" and integ.has_credentials
    # A job due now (new credentials, re-activation) is queued at the scheduler's next tick.
    due = integ.schedulable and integ.next_run_at is not None and integ.next_run_at <= now
    history = [run_point(r) for r in finished_runs(db, integ, limit=HISTORY_RUNS)]
    return {
        "section": "integrations",
        "integ": integ,
        "runs": runs,
        "creds": svc.credentials_status(integ),
        "choices": picker(integ.tables, version_of(integ)),
        "token": token_status(svc.context(db), integ),
        "new_fields": new_fields(db, integ),
        "live": in_flight or waiting_first or due,
        "in_setup": in_setup(request, integ.id),
        "unfinished": integ.is_draft,
        "message": integration_message(integration_facts(db, integ, runs, now), now),
        "summaries": {
            t.name: t for t in table_summaries(integ.tables, history)
        },
        "history": history,
        "now": now,
    }


def run_point(run: Run) -> RunPoint:
    """A finished run as the history summary and chart read it."""
    assert run.finished_at is not None
    return RunPoint(
        run_id=run.id,
        status=run.status_label.replace(" ", "_"),
        started_at=run.started_at,
        finished_at=run.finished_at,
        rows=dict(run.rows or {}),
        table_status=dict(run.table_status or {}),
        error=run.error,
    )


def integration_facts(db: Db, integ: Integration, runs: list[Run], now: datetime) -> (
    IntegrationFacts
):
    """What the integration's state message is computed from (its newest unfinished job,
    and whether a run said today that its key's quota is spent)."""
    job = next((r for r in runs if r.status in ("running", "queued", "deferred")), None)
    ref = quota.key_of(db, integ)
    spent = quota.spent_until(db, ref.fingerprint, now) if ref is not None else None
    return IntegrationFacts(
        state=integ.shown_state,
        has_credentials=integ.has_credentials,
        frequency_hours=integ.frequency_hours,
        next_run_at=integ.next_run_at,
        activated_at=integ.activated_at,
        state_reason=integ.state_reason,
        job_status=job.status if job is not None else None,
        job_resume_at=job.resume_at if job is not None else None,
        quota_spent_until=spent[0] if spent is not None else None,
    )


def budget_of(
    db: Db, user: CurrentUser, integ: Integration
) -> tuple[IntegrationBudget, KeyBudget | None]:
    """The integration's estimate and the key it spends, as the quota page shows them."""
    overview = quota.quota_overview(db, user)
    for key in overview.keys:
        for budget in key.integrations:
            if budget.integration_id == integ.id:
                return budget, key
    return quota.integration_budget(db, integ), None


def _budget_ctx(db: Db, user: CurrentUser, integ: Integration) -> dict[str, Any]:
    budget, key = budget_of(db, user, integ)
    tiers = quota.tracking_tiers(db)
    polls_campaigns = bool(CAMPAIGN_TABLES & set(integ.tables))
    return {
        "budget": budget,
        "key": key,
        "bar": (
            UsageBar(key.used_today + key.in_flight, key.reserved_today, key.per_day)
            if key is not None and key.per_day is not None
            else None
        ),
        # this integration's calls today beside the other integrations' on the same key
        "share": (
            UsageBar(budget.used_today, max(0, key.used_today - budget.used_today), key.per_day)
            if key is not None and key.per_day is not None
            else None
        ),
        "polling": polling_sentence(
            recent_days=tiers.recent_days,
            older_days=tiers.older_days,
            older_every_hours=tiers.older_every_hours,
            oldest_every_hours=tiers.oldest_every_hours,
            recheck_days=tiers.recheck_days,
        )
        if polls_campaigns
        else None,
        "events_polling": events_sentence(tiers.events_every_hours)
        if version_of(integ) == "v3" and "event_registrations" in integ.tables
        else None,
    }


@router.get("/{integration_id}")
def details(request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId) -> Response:
    """State, settings, API budget, tables, jobs and actions of one integration."""
    integ = svc.get_integration(db, user, integration_id)
    ctx = _details_ctx(request, db, user, integ)
    ctx.update(_budget_ctx(db, user, integ))
    ctx["chart"] = history_chart(ctx["history"], ctx["now"])
    ctx["chart_narrow"] = history_chart(ctx["history"], ctx["now"], width=NARROW_WIDTH,
                                        name="narrow")
    return render(request, "integrations/details.html", ctx)


@router.get("/{integration_id}/status")
def status_fragment(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId
) -> Response:
    """The live part of the details page (state + jobs), polled while something is in flight."""
    integ = svc.get_integration(db, user, integration_id)
    ctx = _details_ctx(request, db, user, integ)
    headers = {} if ctx["live"] else {"X-Poll-Done": "1"}
    return render(request, "integrations/_status.html", ctx, headers=headers)


# --------------------------------------------------------------------------- edit


def _edit_form(
    request: Request,
    integ: Integration,
    *,
    frequency: Any,
    selection: dict[str, list[str] | None],
    errors: dict[str, str],
    new_columns: str = "ignore",
    code: int = 200,
    rows: dict[str, int] | None = None,
) -> Response:
    return render(
        request,
        "integrations/edit.html",
        {
            "rows": rows or {},
            "section": "integrations",
            "integ": integ,
            "frequency": frequency,
            "frequencies": REPLICATION_FREQUENCIES_HOURS,
            "new_columns": new_columns,
            "choices": picker(selection, version_of(integ)),
            "unavailable": unavailable_tables(version_of(integ)),
            "errors": errors,
        },
        status_code=code,
    )


@router.get("/{integration_id}/edit")
def edit_page(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId
) -> Response:
    """Change the frequency, the new-field policy, tables and fields (the name and history
    are fixed). A draft continues its setup instead: its tables are chosen there."""
    integ = svc.get_integration(db, user, integration_id)
    if integ.is_draft:
        return _go(f"/integrations/{integ.id}/setup")
    return _edit_form(
        request,
        integ,
        frequency=integ.frequency_hours,
        selection=dict(integ.tables),
        errors={},
        new_columns=integ.new_columns,
        rows=integration_table_rows(db, integ.name).rows,
    )


@router.post("/{integration_id}/edit")
def edit(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId, form: Form
) -> Response:
    """Save the new frequency, policy and selection; nothing changes if anything is invalid."""
    integ = svc.get_integration(db, user, integration_id)
    raw_frequency = form_str(form, "frequency_hours")
    raw_policy = form_str(form, "new_columns") or integ.new_columns
    selection = selection_for(chosen_selection(form, chosen_tables(form)), version_of(integ))
    before = dict(integ.tables)
    try:
        auth.check_selection(integ, selection)
        changes = validated(
            IntegrationUpdate,
            frequency_hours=raw_frequency,
            tables=selection,
            new_columns=raw_policy,
        )
        svc.update_integration(db, integ, changes)
    except ValidationFailed as exc:
        errors = field_messages(exc.errors) or {"tables": exc.message}
        return _edit_form(
            request,
            integ,
            frequency=raw_frequency,
            selection=selection,
            errors=errors,
            new_columns=raw_policy,
            code=422,
        )
    backfill = svc.tables_to_backfill(before, integ.tables)
    message = "Changes saved. They apply from the next job."
    removed = [t for t in before if t not in integ.tables]
    if removed:
        message += (
            " No longer replicated: "
            + ", ".join(removed)
            + f". Their warehouse tables ({', '.join(f'{integ.name}_{t}' for t in removed)})"
            " keep the rows loaded so far and are no longer updated."
        )
    if backfill:
        message += (
            f" Newly selected tables and fields are read from {integ.history_start:%Y-%m-%d}: "
            + ", ".join(backfill)
            + "."
        )
    flash(request, message)
    return _go(f"/integrations/{integ.id}")


# --------------------------------------------------------------------------- actions


@router.post("/{integration_id}/pause")
def pause(request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId) -> Response:
    """Stop scheduling jobs."""
    integ = svc.pause(db, svc.get_integration(db, user, integration_id))
    flash(request, f"{integ.name} is paused: no job will start until you re-activate it.")
    return _go(f"/integrations/{integ.id}")


@router.post("/{integration_id}/switch-to-v3")
def switch_to_v3(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId
) -> Response:
    """A v2 integration reads API v3 from now on (docs/switching-to-v3.md)."""
    integ = begin_switch_to_v3(db, svc.get_integration(db, user, integration_id))
    flash(request, f"{integ.name} now reads Constant Contact's API v3. Authorize it with v3: "
                   "its next job first moves the warehouse tables to v3 (each v2 id is kept "
                   "in a v2_id column), then syncs.")
    return _go(f"/integrations/{integ.id}")


@router.post("/{integration_id}/reactivate")
def reactivate(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId
) -> Response:
    """Resume scheduling (Active again, or Pending if no job has loaded data yet)."""
    integ = svc.reactivate(db, svc.get_integration(db, user, integration_id))
    flash(request, f"{integ.name} is re-activated.")
    return _go(f"/integrations/{integ.id}")


@router.post("/{integration_id}/run")
def run_now(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId, form: Form
) -> Response:
    """Queue a job now (merges into an already queued one).

    When today's API quota will not cover it, nothing is queued: a confirm step says why
    (the control plane's check) and offers to queue it for when the quota resets
    (``when_quota_allows=1``), where it waits as *Deferred*.
    """
    integ = svc.get_integration(db, user, integration_id)
    anyway = form_str(form, "when_quota_allows") == "1"
    try:
        run = svc.run_now(db, integ, user, when_quota_allows=anyway)
    except QuotaWouldDefer as exc:
        return render(
            request,
            "integrations/run_confirm.html",
            {"section": "integrations", "integ": integ, "reason": exc.message},
        )
    except ServiceError as exc:
        flash(request, exc.message, "error")
        return _go(f"/integrations/{integ.id}")
    # What the job is doing is the job page's own message, computed from its state: a
    # flash ("it starts as soon as a worker is free") stayed on screen after it finished.
    return _go(f"/jobs/{run.id}")


@router.get("/{integration_id}/tables/{table}/resync")
def resync_confirm(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId, table: str
) -> Response:
    """Before re-reading a table whole: what it costs (the planner's estimate of its API
    calls, against the key's day) and what it does to the warehouse table."""
    integ = svc.get_integration(db, user, integration_id)
    if table not in integ.tables or table not in TABLES:
        flash(request, f"{table!r} is not a selected table of {integ.name}.", "error")
        return _go(f"/integrations/{integ.id}")
    admission = quota.admit(db, integ, trigger="resync", tables=[table], full_refresh=[table])
    budget, key = budget_of(db, user, integ)
    warehouse_name = f"{integ.name}_{table}"
    rows = integration_table_rows(db, integ.name)
    return render(
        request,
        "integrations/resync_confirm.html",
        {
            "section": "integrations",
            "integ": integ,
            "table": TABLES[table],
            "warehouse_name": warehouse_name,
            "rows": rows.rows.get(warehouse_name),
            "rows_problem": rows.problem,
            "admission": admission,
            "key": key,
            "budget": budget,
        },
    )


@router.post("/{integration_id}/tables/{table}/resync")
def resync(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId, table: str
) -> Response:
    """Re-read one table from the history start."""
    integ = svc.get_integration(db, user, integration_id)
    try:
        run = svc.resync_table(db, integ, table, user)
    except ServiceError as exc:
        flash(request, exc.message, "error")
        return _go(f"/integrations/{integ.id}")
    flash(request, f"{table} will be re-read from {integ.history_start:%Y-%m-%d}.")
    return _go(f"/jobs/{run.id}")


@router.get("/{integration_id}/delete")
def delete_page(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId
) -> Response:
    """Confirm the deletion, and choose whether the warehouse tables go too."""
    integ = svc.get_integration(db, user, integration_id)
    return render(request, "integrations/delete.html", _delete_ctx(db, integ, None))


def _delete_ctx(db: Db, integ: Integration, error: str | None) -> dict[str, Any]:
    """The delete page: what is kept or dropped, with the row counts read now."""
    rows = integration_table_rows(db, integ.name)
    return {"section": "integrations", "integ": integ, "error": error, "rows": rows}


@router.post("/{integration_id}/delete")
def delete(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId, form: Form
) -> Response:
    """Delete the integration (and its warehouse tables when asked)."""
    integ = svc.get_integration(db, user, integration_id)
    drop = form_str(form, "warehouse_tables") == "drop"
    name = integ.name
    try:
        dropped = svc.delete_integration(db, integ, drop_tables=drop)
    except ServiceError as exc:  # Conflict: a job is running; it was asked to stop
        return render(
            request,
            "integrations/delete.html",
            _delete_ctx(db, integ, exc.message),
            status_code=409,
        )
    if in_setup(request, integration_id):
        request.session.pop(SETUP_KEY, None)
    if drop:
        flash(request, f"{name} is deleted, with {len(dropped)} warehouse table(s).")
    else:
        flash(request, f"{name} is deleted. Its warehouse tables were kept.")
    return _go("/integrations")
