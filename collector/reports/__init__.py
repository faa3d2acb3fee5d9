"""netwarden."""
