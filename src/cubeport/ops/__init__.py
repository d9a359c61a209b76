"""Near-real-time operations: watchers, suites, delivery."""
