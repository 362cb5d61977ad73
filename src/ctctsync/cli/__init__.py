"""The ``ctctsync`` command line (the top layer: it may import every other part).

- ``app``: the typer application and the connector verbs (check, discover, sync, state, ...);
- ``control``/``control_commands``: the control-plane verbs (serve, integrations, runs, users);
- ``demo``/``demo_serve``: ``ctctsync demo``;
- ``output``: the console, result tables and exit codes they share.
"""

from ctctsync.cli.app import app, main

__all__ = ["app", "main"]
