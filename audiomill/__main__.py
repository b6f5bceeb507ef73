"""``python -m audiomill`` runs the CLI."""

from audiomill.cli.app import main

main()
