"""``python -m ctctsync`` runs the command line."""

from ctctsync.cli import main

main()
