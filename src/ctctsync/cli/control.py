"""The control plane's verbs on the command line: ``serve``, ``integrations``, ``runs``,
``users``, ``keys``, ``plan``, ``api-keys``.

Thin typer wrappers over ``ctctsync.cli.control_commands`` (which hold the behaviour and are
tested directly). They act on the same metadata store the server uses
(``CTCTSYNC_DATABASE_URL``, default ``.ctctsync/control.db``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from ctctsync.tables import ApiVersion

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
NameArg = Annotated[str, typer.Argument(help="The integration's name.")]

integrations_app = typer.Typer(help="Manage integrations (the same actions as the web UI).")
runs_app = typer.Typer(help="Inspect runs (jobs) and their process logs.")
users_app = typer.Typer(help="Manage users of the control plane.")
keys_app = typer.Typer(help="Make the control plane's secret keys.")
api_keys_app = typer.Typer(
    help="Constant Contact API keys in use and their per-second and per-day limits."
)


@integrations_app.command("list")
def integrations_list(as_json: JsonOpt = False) -> None:
    """List integrations with their state, last run and next run."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.integrations_list(as_json=as_json))


@integrations_app.command("add")
def integrations_add(
    name: NameArg,
    frequency: Annotated[
        int, typer.Option("--frequency", help="Hours between runs: 1,2,3,4,6,8,12 or 24.")
    ] = 24,
    history_start: Annotated[
        str | None,
        typer.Option(help="How far back the first run reads (YYYY-MM-DD; default a year ago)."),
    ] = None,
    table: Annotated[
        list[str] | None,
        typer.Option(
            "--table",
            "-t",
            help="A table, or table:col1,col2 for chosen columns (repeatable; default all).",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="CTCTSYNC_API_KEY", help="API key (or authorize in the web UI)."),
    ] = None,
    access_token: Annotated[
        str | None,
        typer.Option(envvar="CTCTSYNC_ACCESS_TOKEN", help="Access token (env recommended)."),
    ] = None,
    api_version: Annotated[
        ApiVersion,
        typer.Option(
            "--api-version",
            help="Constant Contact API: v3 (OAuth2, authorize in the web UI) or legacy v2. "
            "An --api-key with an --access-token is a v2 credential and makes it v2.",
        ),
    ] = "v3",  # control.models.DEFAULT_API_VERSION; not imported: keeps the CLI start light
    as_json: JsonOpt = False,
) -> None:
    """Create an integration (its name prefixes its warehouse tables and cannot change)."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(
        commands.integrations_add(
            name,
            frequency_hours=frequency,
            history_start=history_start,
            tables=table or None,
            api_key=api_key,
            access_token=access_token,
            api_version=api_version,
            as_json=as_json,
        )
    )


@integrations_app.command("show")
def integrations_show(name: NameArg, as_json: JsonOpt = False) -> None:
    """Show one integration: state, tables, recent runs."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.integrations_show(name, as_json=as_json))


@integrations_app.command("pause")
def integrations_pause(name: NameArg) -> None:
    """Pause scheduled runs."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.integrations_pause(name))


@integrations_app.command("resume")
def integrations_resume(name: NameArg) -> None:
    """Re-activate a paused (or failed) integration."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.integrations_resume(name))


@integrations_app.command("run")
def integrations_run(
    name: NameArg,
    wait: Annotated[bool, typer.Option(help="Wait for the run and exit with its outcome.")] = False,
    when_quota_allows: Annotated[
        bool,
        typer.Option(
            help="When today's API quota will not cover the run, queue it anyway: it waits "
            "(deferred) for the quota's reset at 00:00 UTC. Without it, nothing is queued "
            "(exit 3)."
        ),
    ] = False,
) -> None:
    """Queue a run now."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(
        commands.integrations_run(name, wait=wait, when_quota_allows=when_quota_allows)
    )


@integrations_app.command("resync")
def integrations_resync(
    name: NameArg, table: Annotated[str, typer.Argument(help="The table to re-sync.")]
) -> None:
    """Forget one table's bookmark and queue a run that re-reads it from the history start."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.integrations_resync(name, table))


@integrations_app.command("delete")
def integrations_delete(
    name: NameArg,
    drop_tables: Annotated[
        bool, typer.Option(help="Also drop its warehouse tables (default: keep them).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm the deletion.")] = False,
) -> None:
    """Delete an integration, its runs and its bookmarks."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.integrations_delete(name, drop_tables=drop_tables, yes=yes))


@runs_app.command("list")
def runs_list(
    integration: Annotated[str | None, typer.Argument(help="Only this integration.")] = None,
    limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The newest runs."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.runs_list(integration, limit=limit, as_json=as_json))


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    as_json: JsonOpt = False,
) -> None:
    """One run: status, timings, rows per table, API calls, error."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.runs_show(run_id, as_json=as_json))


@runs_app.command("logs")
def runs_logs(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Follow a running job.")] = False,
) -> None:
    """A run's process log."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.runs_logs(run_id, follow=follow))


EmailArg = Annotated[str, typer.Argument(help="The user's email (their sign-in name).")]


@users_app.command("create")
def users_create(
    email: EmailArg,
    admin: Annotated[bool, typer.Option("--admin", help="Make an administrator.")] = False,
    temporary: Annotated[
        bool,
        typer.Option(
            "--temporary-password",
            help="Make a temporary password, print it once; it must be changed at the first "
            "sign-in (instead of prompting for one).",
        ),
    ] = False,
) -> None:
    """Create a user (the first one must be an --admin). Prompts for the password, or reads
    CTCTSYNC_USER_PASSWORD; --temporary-password makes one instead."""
    import os

    from ctctsync.cli import users_commands as commands

    password = None if temporary else os.environ.get("CTCTSYNC_USER_PASSWORD")
    if password is None and not temporary:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    raise typer.Exit(commands.users_create(email, password, is_admin=admin))


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """Every user (role, status, created, last sign-in) and the pending invitations."""
    from ctctsync.cli import users_commands as commands

    raise typer.Exit(commands.users_list(as_json=as_json))


@users_app.command("invite")
def users_invite(
    email: EmailArg,
    admin: Annotated[bool, typer.Option("--admin", help="Invite an administrator.")] = False,
    send_email: Annotated[
        bool,
        typer.Option(
            "--send-email", help="Also e-mail the link (needs CTCTSYNC_SMTP_HOST and friends)."
        ),
    ] = False,
) -> None:
    """Print a one-time invitation link (valid 7 days) to pass on; the person opening it
    chooses their password."""
    from ctctsync.cli import users_commands as commands

    raise typer.Exit(commands.users_invite(email, is_admin=admin, send_email=send_email))


@users_app.command("deactivate")
def users_deactivate(email: EmailArg) -> None:
    """Stop a user from signing in: their sessions end now, their API tokens are refused."""
    from ctctsync.cli import users_commands as commands

    raise typer.Exit(commands.users_deactivate(email))


@users_app.command("activate")
def users_activate(email: EmailArg) -> None:
    """Re-activate a deactivated user (their API tokens work again)."""
    from ctctsync.cli import users_commands as commands

    raise typer.Exit(commands.users_activate(email))


@users_app.command("reset-password")
def users_reset_password(email: EmailArg) -> None:
    """Give a user a temporary password (printed once) to change at their next sign-in;
    their sessions end and a sign-in lockout is cleared."""
    from ctctsync.cli import users_commands as commands

    raise typer.Exit(commands.users_reset_password(email))


@users_app.command("create-admin")
def users_create_admin(
    email: Annotated[str, typer.Argument(help="The administrator's email (sign-in name).")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="CTCTSYNC_ADMIN_PASSWORD",
            help="Password (prompted; or CTCTSYNC_ADMIN_PASSWORD).",
        ),
    ],
) -> None:
    """Create an administrator."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.users_create_admin(email, password))


@users_app.command("unlock")
def users_unlock(
    email: Annotated[str, typer.Argument(help="The locked account's email.")],
) -> None:
    """Clear the sign-in lockout of an account (after too many wrong passwords)."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.users_unlock(email))


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new CTCTSYNC_SECRET_KEY and CTCTSYNC_ENCRYPTION_KEY (nothing is stored)."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.keys_generate())


@api_keys_app.command("list")
def api_keys_list(as_json: JsonOpt = False) -> None:
    """The API keys in use (a fingerprint and a label, never the key) and their limits."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.api_keys_list(as_json=as_json))


@api_keys_app.command("set-limits")
def api_keys_set_limits(
    key: Annotated[str, typer.Argument(help="The key's fingerprint (or a unique prefix).")],
    per_second: Annotated[
        float | None, typer.Option(help="Requests per second (CC: 4; partner keys: 10).")
    ] = None,
    per_day: Annotated[
        int | None,
        typer.Option(help="Requests per UTC day (CC: 10,000; partner keys: 250,000)."),
    ] = None,
    partner: Annotated[
        bool, typer.Option(help="CC's partner limits: 10/s and 250,000/day.")
    ] = False,
    default: Annotated[
        bool, typer.Option(help="Back to the installation's defaults (4/s, 10,000/day).")
    ] = False,
) -> None:
    """Set an API key's per-second and per-day limits (limits not given stay as they are)."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(
        commands.api_keys_set_limits(
            key, per_second=per_second, per_day=per_day, partner=partner, default=default
        )
    )


def plan(as_json: JsonOpt = False) -> None:
    """The day's API budget: estimated calls per run and per day of each integration, per
    API key against its daily limit (used today, reserved, headroom)."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.plan(as_json=as_json))


def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Interface to bind (default 127.0.0.1; others need a secret key)."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[int | None, typer.Option(help="Job worker threads (default 2).")] = None,
) -> None:
    """Run the web UI, the REST API, the scheduler and the job workers in one process."""
    from ctctsync.cli import control_commands as commands
    from ctctsync.cli.extras import require_server_extra

    require_server_extra("serve")
    raise typer.Exit(commands.serve(host=host, port=port, workers=workers))


def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Runs this process executes at once.")
    ] = 2,
) -> None:
    """Execute queued runs from the fleet's queue (CTCTSYNC_QUEUE=procrastinate) until
    SIGTERM; start any number of them, on any machine that reaches the store."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.worker(concurrency=concurrency))


def migrate() -> None:
    """Bring the store's schema to this version (every process also does it at start): the
    first step of an upgrade, before restarting the web process and the workers."""
    from ctctsync.cli import control_commands as commands

    raise typer.Exit(commands.migrate())


def register(app: typer.Typer) -> None:
    """Add the control plane's commands to the main ``ctctsync`` app."""
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.command("migrate")(migrate)
    app.add_typer(integrations_app, name="integrations")
    app.add_typer(runs_app, name="runs")
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")
    app.command("plan")(plan)
    app.add_typer(api_keys_app, name="api-keys")
