"""Running jobs: CLI, runners (local, Ray), resume markers, dataset finalization."""
