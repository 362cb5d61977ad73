"""ctctsync: replicate a Constant Contact account into a data warehouse."""

__version__ = "0.1.0"
