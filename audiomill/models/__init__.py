"""Model wrappers: each loads weights from a local path, never from a hub."""
