"""The control plane: users, integrations, scheduled runs, workers, REST API.

Design and public API: docs/architecture-control.md.
"""
