"""Shared pytest configuration: fixture plugins of the project."""

pytest_plugins = ["ctctsync.sandbox.testing"]
