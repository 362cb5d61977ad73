"""ctctsync as a Singer tap (``ctctsync tap``): Constant Contact for Meltano and other Singer
runners, on the same client, rate limiter, readers, registry and bookmark rules as
``ctctsync sync``.

* :mod:`ctctsync.singer.config`: the ``--config`` JSON;
* :mod:`ctctsync.singer.catalog`: ``--discover``'s catalog, and what a catalog selects;
* :mod:`ctctsync.singer.tap`: the run (SCHEMA, RECORD and STATE messages).

docs/integrations.md ("Singer / Meltano") shows it run by hand and under Meltano.
"""

from ctctsync.singer.catalog import CatalogError, Selection, discover, select
from ctctsync.singer.config import TapConfig, TapConfigError, load_tap_config
from ctctsync.singer.tap import MessageWriter, StateError, check_state, run_tap

__all__ = [
    "CatalogError",
    "MessageWriter",
    "Selection",
    "StateError",
    "TapConfig",
    "TapConfigError",
    "check_state",
    "discover",
    "load_tap_config",
    "run_tap",
    "select",
]
