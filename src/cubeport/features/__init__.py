"""Feature store: geoDB-style vector collections (issue 6)."""
