"""``python -m kavier`` runs the CLI."""

from kavier.cli import main

main()
