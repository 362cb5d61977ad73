"""``ctctsync tap``: the Singer tap (``ctctsync.singer``), as Singer runners call one.

``ctctsync tap --config c.json --discover`` prints the catalog; ``ctctsync tap --config
c.json [--catalog cat.json | --properties cat.json] [--state state.json]`` writes SCHEMA,
RECORD and STATE messages on stdout. Nothing else ever goes to stdout: logs and errors go to
stderr (INFO and up for the tap's own lines). Exit codes are every command's: 0 done, 1 the
run failed (the STATE of each finished stream was sent), 2 bad config, catalog or state,
3 the daily API quota is spent, 4 the token needs re-authorizing.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ctctsync.cli.output import EXIT_CONFIG, EXIT_FAILED

PathOpt = Path | None


def _fail(message: str, code: int = EXIT_CONFIG) -> typer.Exit:
    typer.echo(f"ctctsync tap: {message}", err=True)
    return typer.Exit(code)


def _json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(f"{what} file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(f"{what} file {path} is not readable JSON ({exc})") from None


def tap(
    config: Annotated[Path, typer.Option("--config", help="The tap's JSON config file.")],
    discover: Annotated[
        bool, typer.Option("--discover", help="Print the catalog of streams and exit.")
    ] = False,
    catalog: Annotated[
        PathOpt, typer.Option("--catalog", help="The catalog: which streams and fields to send.")
    ] = None,
    properties: Annotated[
        PathOpt, typer.Option("--properties", help="A catalog, under its older option name.")
    ] = None,
    state: Annotated[
        PathOpt, typer.Option("--state", help="The last STATE value: resume from its bookmarks.")
    ] = None,
) -> None:
    """Run as a Singer tap: --discover prints the catalog; otherwise SCHEMA, RECORD and STATE
    messages on stdout (docs/integrations.md, "Singer / Meltano")."""
    from ctctsync.errors import FAILURES, CtctError
    from ctctsync.singer import (
        CatalogError,
        StateError,
        TapConfigError,
        load_tap_config,
        run_tap,
        select,
    )
    from ctctsync.singer.catalog import discover as discover_catalog

    # ``tap-ctctsync`` has no ``ctctsync`` callback to set the log up (a no-op if one did)
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("ctctsync.singer")
    log.setLevel(logging.INFO)
    try:
        cfg = load_tap_config(config)
    except TapConfigError as exc:
        raise _fail(str(exc)) from None
    out = sys.stdout.buffer
    if discover:
        out.write(json.dumps(discover_catalog(cfg.api_version), indent=2).encode() + b"\n")
        out.flush()
        return
    if catalog is not None and properties is not None:
        raise _fail("give --catalog or --properties, not both")
    chosen = catalog or properties
    try:
        if chosen is None:
            # no catalog: every stream the API version has (what older runners expect)
            selections = select(discover_catalog(cfg.api_version), cfg.api_version)
        else:
            selections = select(_json_file(chosen, "catalog"), cfg.api_version)
        value = {} if state is None else _json_file(state, "state")
        if not selections:
            log.warning("the catalog selects no stream: nothing to send")
        run_tap(cfg, selections, value, out)
    except (CatalogError, StateError) as exc:
        raise _fail(str(exc)) from None
    except CtctError as exc:
        log.error("%s", exc)
        raise typer.Exit(int(FAILURES[exc.failure_type].exit_code)) from None
    except BrokenPipeError:
        # the target went away: nothing more can be delivered, and saying so is all we can do
        log.error("the target closed the pipe; stopping")
        raise typer.Exit(EXIT_FAILED) from None


def register(app: typer.Typer) -> None:
    """Add ``tap`` to the main ``ctctsync`` app."""
    app.command("tap")(tap)


def main() -> None:
    """The ``tap-ctctsync`` console script: ``ctctsync tap`` under the name Singer runners
    expect (``tap-<source>``), taking the same options (Meltano's ``executable``)."""
    # no pretty tracebacks: they print local variables, and a token is one
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command()(tap)
    single()
