"""Safety: redaction (applied inside telemetry) and, as they come, guards."""
