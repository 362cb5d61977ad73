"""The store's Alembic script directory (run through :mod:`ctctsync.db`).

Two branches, each with its own root, in ``versions/``:

- ``state``: the connector's bookmark tables (``state_0001``), all a stand-alone
  ``StateStore`` (the CLI's ``.ctctsync/state.db``) upgrades;
- ``control``: the control plane's tables (``0001``), upgraded with ``state`` when a
  ``ControlPlane`` starts (``heads``).
"""
