"""``Redactor``: one configurable object deciding what a shown request may reveal.

:mod:`~httpx_resilience.observe.redact` holds the defaults as module-level
functions (used by the core for exception messages and its own log lines).
A :class:`Redactor` adds the knobs the observers and middlewares need: extra
secret headers and query parameters, a switch for masking phone numbers and
e-mail addresses, and a scrubber for free text such as exception messages
(``Bearer`` tokens, ``api_key=...`` pairs, PII).

Redaction is on by default. It can only add to what the core already hides:
the URLs inside pipeline events were redacted with the defaults before any
observer sees them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from ._rules import ParamRules, fragments, lower_names, name_regex
from .redact import (
    REDACTED,
    current_rules,
    mask_pii,
    redact_url_with,
    scrub_with,
)

__all__ = ["DEFAULT_REDACTOR", "Redactor"]

_CACHE_SIZE = 512


def _mask_segments(path: str) -> str:
    """Mask PII in each path segment; ``path`` itself when nothing changed."""
    if not any(c.isdigit() for c in path):
        return path  # e-mails were masked already
    out = []
    changed = False
    for seg in path.split("/"):
        plain = unquote(seg)
        masked = mask_pii(plain)
        if masked != plain:
            seg = quote(masked, safe="+*@()-.")
            changed = True
        out.append(seg)
    return "/".join(out) if changed else path


def _frozen_lower(names: Iterable[str]) -> frozenset[str]:
    return frozenset(lower_names(names))


@dataclass(frozen=True, slots=True, kw_only=True)
class Redactor:
    """What to hide when a request is shown in a log, an error, a span or a metric.

    It adds to the process-wide rules of :mod:`~httpx_resilience.observe.redact`
    (secret headers; query parameters matching ``*token*``, ``*secret*``,
    ``*key*``, ``*pass*``, ``*session*``, ``*sig*``, ``*credential*``, ``jwt``,
    ``code``, ...; the parameters auth handlers send; values registered as
    secret), and follows them when they change.

    Args:
        extra_headers: header names to redact besides the defaults
            (``Authorization``, ``Proxy-Authorization``, ``Cookie``, ``Set-Cookie``,
            ``X-API-KEY``, ..., and the header an ``APIKeyAuth`` sends its key in);
            case-insensitive.
        extra_params: query parameter names or glob patterns (``"x-tenant-*"``)
            to redact besides the process-wide ones; case-insensitive.
        allow_params: parameter names to show although a pattern matches them
            (``{"keyword"}`` despite ``*key*``). The parameter an auth handler
            sends stays hidden.
        mask_pii: mask phone numbers and e-mail addresses in URLs and free text.
        enabled: ``False`` shows everything as it is (for local debugging
            only; the core's own messages stay redacted).

    Raises:
        ValueError: a name or pattern is empty.

    Example::

        Redactor(extra_headers={"X-Tenant-Secret"}, extra_params={"tenant_*"})
    """

    extra_headers: frozenset[str] = field(default_factory=frozenset)
    extra_params: frozenset[str] = field(default_factory=frozenset)
    allow_params: frozenset[str] = field(default_factory=frozenset)
    mask_pii: bool = True
    enabled: bool = True
    _headers: frozenset[str] = field(init=False, repr=False, compare=False)
    _extra: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _needles: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _cache: dict[str, str] = field(init=False, repr=False, compare=False)
    _seen: list[ParamRules] = field(init=False, repr=False, compare=False)
    _all_headers: list[frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        headers = _frozen_lower(self.extra_headers)
        params = _frozen_lower(self.extra_params)
        object.__setattr__(self, "extra_headers", headers)
        object.__setattr__(self, "extra_params", params)
        object.__setattr__(self, "allow_params", _frozen_lower(self.allow_params))
        object.__setattr__(self, "_headers", headers)
        object.__setattr__(self, "_extra", name_regex(params))
        object.__setattr__(self, "_needles", fragments(params))
        object.__setattr__(self, "_cache", {})
        rules = current_rules()
        object.__setattr__(self, "_seen", [rules])
        object.__setattr__(self, "_all_headers", [rules.headers | headers])

    def _rules(self) -> ParamRules:
        """The process-wide rules; the URL cache is dropped when they have changed."""
        rules = current_rules()
        seen = self._seen
        if seen[0] is not rules:
            self._cache.clear()
            seen[0] = rules
            self._all_headers[0] = rules.headers | self._headers
        return rules

    def _sensitive_headers(self) -> frozenset[str]:
        self._rules()
        return self._all_headers[0]

    def is_sensitive_param(self, name: str) -> bool:
        """Whether the value of query parameter ``name`` is hidden."""
        if not self.enabled:
            return False
        rules = self._rules()
        low = name.lower()
        if low in rules.registered or self._extra.fullmatch(low) is not None:
            return True
        return low not in self.allow_params and rules.is_sensitive(low)

    def url(self, url: object) -> str:
        """``url`` as text: user-info and secret query values redacted, PII masked.

        Results are cached (a service calls the same few URLs over and over);
        the cache is dropped when the process-wide rules change. Text that
        does not parse as a URL is scrubbed as free text.
        """
        text = str(url)
        if not self.enabled:
            return text
        self._rules()
        cache = self._cache
        shown = cache.get(text)
        if shown is None:
            shown = self._redact_url(text)
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[text] = shown
        return shown

    def _redact_url(self, text: str) -> str:
        # mask_pii's phone pattern skips a number right after "/": mask each segment.
        return redact_url_with(text, self.is_sensitive_param, self.mask_pii, _mask_segments)

    def headers(
        self, headers: Iterable[tuple[str, str]] | Mapping[str, str]
    ) -> dict[str, str]:
        """A copy of ``headers`` with secret values replaced by ``[REDACTED]``."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        if not self.enabled:
            return dict(items)
        sensitive = self._sensitive_headers()
        return {k: (REDACTED if k.lower() in sensitive else v) for k, v in items}

    def text(self, text: str) -> str:
        """Free text (an exception message, a retry reason) with secrets and PII hidden.

        Hides what :func:`~httpx_resilience.observe.redact.scrub_text` hides
        (header values quoted by protocol errors, credentials after an auth
        scheme, JWTs, private keys, registered secret values), with this
        redactor's parameters and headers in ``name=value``/``name: value``
        pairs and URLs, and (with ``mask_pii``) phone numbers and e-mails.
        """
        if not self.enabled or not text:
            return text
        needles = (*self._rules().needles, *self._needles)
        text = scrub_with(
            text, self.is_sensitive_param, self._sensitive_headers(), needles, self.url
        )
        return mask_pii(text) if self.mask_pii else text

    def is_sensitive_header(self, name: str) -> bool:
        """Whether the value of header ``name`` is hidden."""
        return self.enabled and name.lower() in self._sensitive_headers()


DEFAULT_REDACTOR = Redactor()
"""The defaults: every built-in secret header and parameter, PII masked."""
