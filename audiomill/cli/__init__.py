"""The ``audiomill`` command line: Typer apps, rendering, progress; one console, one set of exit codes."""
