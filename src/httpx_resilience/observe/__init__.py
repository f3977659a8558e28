"""Observation: redaction of secrets and PII, events, logging, metrics and traces.

The package exports nothing itself: import from its modules (``observe.events``,
``observe.redact``, ``observe.logging`` …) or from :mod:`httpx_resilience`.
"""

__all__: list[str] = []
