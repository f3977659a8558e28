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
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .redact import REDACTED, SENSITIVE_HEADERS, SENSITIVE_QUERY_PARAMS, mask_pii, redact_url

__all__ = ["DEFAULT_REDACTOR", "Redactor"]

# "Bearer abc.def", "Basic dXNlcjpwdw==": the credential after an auth scheme.
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=-]+)")


def _hide_credential(match: re.Match[str]) -> str:
    scheme, space, token = match.groups()
    if scheme.lower() == "basic" and not _looks_base64(token):
        return match.group(0)  # prose such as "basic auth failed"
    return f"{scheme}{space}{REDACTED}"


def _looks_base64(token: str) -> bool:
    return len(token) >= 8 and (
        any(c.isdigit() or c in "+/=" for c in token) or any(c.isupper() for c in token[1:])
    )


_CACHE_SIZE = 512


def _mask_segments(path: str) -> str:
    """Mask PII in each path segment; ``path`` itself when nothing changed."""
    if not any(c.isdigit() for c in path):
        return path  # e-mails were masked by redact_url already
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
    if isinstance(names, str):  # a lone name, not an iterable of its letters
        names = (names,)
    return frozenset(n.lower() for n in names)


@dataclass(frozen=True, slots=True, kw_only=True)
class Redactor:
    """What to hide when a request is shown in a log, an error, a span or a metric.

    Args:
        extra_headers: header names to redact besides the defaults
            (``Authorization``, ``Proxy-Authorization``, ``Cookie``, ``Set-Cookie``,
            ``X-API-KEY``, ...); case-insensitive.
        extra_params: query parameter names to redact besides the defaults
            (``api_key``, ``token``, ``access_token``, ``signature``, ...).
        mask_pii: mask phone numbers and e-mail addresses in URLs and free text.
        enabled: ``False`` shows everything as it is (for local debugging
            only; the core's own messages stay redacted).

    Example::

        Redactor(extra_headers={"X-Tenant-Secret"}, extra_params={"session"})
    """

    extra_headers: frozenset[str] = field(default_factory=frozenset)
    extra_params: frozenset[str] = field(default_factory=frozenset)
    mask_pii: bool = True
    enabled: bool = True
    _headers: frozenset[str] = field(init=False, repr=False, compare=False)
    _params: frozenset[str] = field(init=False, repr=False, compare=False)
    _pairs: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _cache: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        headers = _frozen_lower(self.extra_headers)
        params = _frozen_lower(self.extra_params)
        object.__setattr__(self, "extra_headers", headers)
        object.__setattr__(self, "extra_params", params)
        object.__setattr__(self, "_headers", SENSITIVE_HEADERS | headers)
        object.__setattr__(self, "_params", SENSITIVE_QUERY_PARAMS | params)
        # Inside free text: "api_key=abc" (a parameter), "X-API-KEY: abc" (a header).
        # Parameters need "=": "status code: 503" is not an OAuth code.
        def alternation(names: frozenset[str]) -> str:
            return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))

        pattern = (
            rf"(?i)(?<![\w-])(?:({alternation(self._params)})(\s*=\s*)"
            rf"|({alternation(self._headers)})(\s*[=:]\s*))"
            r"(?!\[REDACTED\])[^\s&,;'\"]+"
        )
        object.__setattr__(self, "_pairs", re.compile(pattern))
        object.__setattr__(self, "_cache", {})

    def url(self, url: object) -> str:
        """``url`` as text: user-info and secret query values redacted, PII masked.

        Results are cached (a service calls the same few URLs over and over).
        Text that does not parse as a URL is scrubbed as free text.
        """
        text = str(url)
        if not self.enabled:
            return text
        cache = self._cache
        shown = cache.get(text)
        if shown is None:
            shown = self._redact_url(text)
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[text] = shown
        return shown

    def _redact_url(self, text: str) -> str:
        if self.mask_pii:
            shown = redact_url(text, self.extra_params)
            try:
                parts = urlsplit(shown)
            except ValueError:
                return shown
            # redact_url's phone pattern skips a number right after "/": mask each segment.
            path = _mask_segments(parts.path)
            if path is parts.path:
                return shown
            return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))
        try:
            parts = urlsplit(text)
        except ValueError:
            return self.text(text)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, REDACTED if k.lower() in self._params else v) for k, v in pairs],
                safe="[]*@+",
            )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))

    def headers(
        self, headers: Iterable[tuple[str, str]] | Mapping[str, str]
    ) -> dict[str, str]:
        """A copy of ``headers`` with secret values replaced by ``[REDACTED]``."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        if not self.enabled:
            return dict(items)
        sensitive = self._headers
        return {k: (REDACTED if k.lower() in sensitive else v) for k, v in items}

    def text(self, text: str) -> str:
        """Free text (an exception message, a retry reason) with secrets and PII hidden.

        Hides credentials after an auth scheme (``Bearer …``), values of
        secret parameters and headers written as ``name=value`` or
        ``name: value``, and (with ``mask_pii``) phone numbers and e-mails.
        """
        if not self.enabled or not text:
            return text
        text = _AUTH_SCHEME.sub(_hide_credential, text)
        text = self._pairs.sub(_hide_pair, text)
        return mask_pii(text) if self.mask_pii else text

    def is_sensitive_header(self, name: str) -> bool:
        """Whether the value of header ``name`` is hidden."""
        return self.enabled and name.lower() in self._headers


def _hide_pair(match: re.Match[str]) -> str:
    name, sep = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
    return f"{name}{sep}{REDACTED}"


DEFAULT_REDACTOR = Redactor()
"""The defaults: every built-in secret header and parameter, PII masked."""
