"""ctctsync: replicate a Constant Contact account into a data warehouse."""

from importlib.metadata import PackageNotFoundError, version

try:
    # the installed distribution's version, so `ctctsync --version` and the wheel agree
    # (pyproject.toml is the one place the version is written)
    __version__ = version("ctctsync")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
