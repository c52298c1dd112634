"""Security posture of monitored PostgreSQL servers: read catalogue facts (`facts.collect`),
judge them against a dated release list (`evaluate.evaluate`), keep the current findings and
say when one opens or resolves (`check.run_check`)."""
