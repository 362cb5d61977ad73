"""Optional parts of the install, and the one clear line a command prints when one is missing.

The web stack (FastAPI, Starlette, uvicorn, Jinja2, ...) is the ``server`` extra: the
connector's verbs run without it, while ``serve``, ``sandbox`` and ``demo`` need it.
"""

from __future__ import annotations

import importlib

import typer

from ctctsync.cli.output import EXIT_CONFIG, err_console

SERVER_MODULES = ("fastapi", "starlette", "uvicorn", "jinja2", "multipart", "itsdangerous")


def missing_server_modules() -> list[str]:
    """The web-stack modules that cannot be imported here (empty when the extra is installed)."""
    missing = []
    for name in SERVER_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def require_server_extra(command: str) -> None:
    """Exit 2 with an install hint when ``command`` needs the ``server`` extra and it is absent."""
    missing = missing_server_modules()
    if missing:
        err_console.print(
            f"[red]`ctctsync {command}` needs the web stack, which is not installed[/] "
            f"(missing: {', '.join(missing)}). Install it with: "
            "pip install 'ctctsync\\[server]'",  # the backslash: [server] is text, not markup
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_CONFIG)
