"""Observation: redaction of secrets and PII, events, logging, metrics and traces."""
