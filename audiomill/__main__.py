"""``python -m audiomill`` runs the CLI."""

from audiomill.orchestration.cli import main

main()
