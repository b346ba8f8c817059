"""Real components for tests: servers on 127.0.0.1 that tests start and stop themselves."""
