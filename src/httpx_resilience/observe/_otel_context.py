"""An attempt's span made current while it is sent, with HTTP instrumentation suppressed.

The HTTP semantic conventions want one CLIENT span per physical request. The
tracing observer makes it (with ``http.request.resend_count`` on a resend),
but ``opentelemetry-instrumentation-httpx`` wraps httpx's own transport, the
one a :class:`~httpx_resilience.ResilientTransport` sends each attempt
through, and would add a second CLIENT span per attempt (a root of its own
trace, whose ``traceparent`` replaced ours). While an attempt is in flight
the observer therefore makes its span the current one and sets
OpenTelemetry's "suppress HTTP instrumentation" flag in the context, the flag
every HTTP client instrumentation checks before it starts a span (and records
its own ``http.client.request.duration``).

The pipeline emits an attempt's start and its end from the same coroutine,
so the context attached at the start is detached at the end in the context
it was attached in. A scope whose context is no longer the current one (its
task ended, or another task closes it) is left alone: the context it was
attached to is gone or is not ours to change.

``HTTPXClientInstrumentor.instrument_client(client)`` on a client over a
``ResilientTransport`` wraps the whole logical request in its CLIENT span
instead: a span that cannot see the attempts, the conventions' "top-most
operation" span. It is then the request's only HTTP CLIENT span: our attempt
spans are INTERNAL under it, its ``traceparent`` is the one sent, and its
duration is the one recorded (:func:`enclosing_http_client` tells the case).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ENCLOSED", "AttemptScope", "enclosing_http_client"]

#: Set in an attempt's context when another HTTP CLIENT span encloses its request.
ENCLOSED = "httpx_resilience.enclosing_http_client"
_OURS = "httpx_resilience"


def enclosing_http_client(trace: Any, context: Any) -> bool:
    """Whether an HTTP CLIENT span that is not ours encloses the current request."""
    if context.get_value(ENCLOSED):
        return True
    span = trace.get_current_span()
    if getattr(span, "kind", None) is not trace.SpanKind.CLIENT:
        return False
    if getattr(getattr(span, "instrumentation_scope", None), "name", None) == _OURS:
        return False
    attrs = getattr(span, "attributes", None) or {}
    return "http.request.method" in attrs or "http.method" in attrs


class AttemptScope:
    """Attach and detach the context of attempt spans.

    Args:
        trace: the ``opentelemetry.trace`` module.
        context: the ``opentelemetry.context`` module.
        suppress: set the "suppress HTTP instrumentation" flag under each attempt.
    """

    __slots__ = ("_context", "_key", "_trace")

    def __init__(self, trace: Any, context: Any, suppress: bool) -> None:
        self._trace = trace
        self._context = context
        # Defined by opentelemetry-api (>= 1.24) and read by every HTTP client
        # instrumentation through opentelemetry.instrumentation.utils.
        key = getattr(context, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY", None)
        self._key = key if suppress else None

    def enclosed(self) -> bool:
        """:func:`enclosing_http_client` in the current context."""
        return enclosing_http_client(self._trace, self._context)

    def enter(self, span: Any, enclosed: bool = False) -> tuple[Any, Any]:
        """Make ``span`` current (and HTTP instrumentation quiet); the handle for :meth:`exit`.

        ``enclosed``: another HTTP CLIENT span encloses the request (marked in the context).
        """
        ctx = self._trace.set_span_in_context(span)
        if self._key is not None:
            ctx = self._context.set_value(self._key, True, ctx)
        if enclosed:
            ctx = self._context.set_value(ENCLOSED, True, ctx)
        return ctx, self._context.attach(ctx)

    def exit(self, handle: tuple[Any, Any]) -> None:
        """Restore the context an :meth:`enter` replaced, if it is still this task's own."""
        ctx, token = handle
        if self._context.get_current() is ctx:
            self._context.detach(token)
