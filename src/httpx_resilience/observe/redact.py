"""Redaction of secrets and personal data wherever a request is shown.

Headers such as ``Authorization`` and token-like query parameters are replaced
by ``[REDACTED]``; phone numbers and e-mail addresses in free text are masked
so that logs and exception messages never carry them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "SENSITIVE_HEADERS",
    "SENSITIVE_QUERY_PARAMS",
    "mask_pii",
    "redact_headers",
    "redact_url",
]

REDACTED = "[REDACTED]"

SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
        "x-amz-security-token",
        "dapr-api-token",
    }
)

SENSITIVE_QUERY_PARAMS: frozenset[str] = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "key",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "secret",
        "password",
        "passwd",
        "signature",
        "sig",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "auth",
        "code",
    }
)

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-]+(?:\.[\w-]+)+)")
# Phone numbers: an optional +, then 10-15 digits possibly split by spaces,
# dots, dashes or parentheses.  Long bare digit runs (ids, timestamps) that are
# not phone-shaped are left alone unless they start with "+".
_PHONE = re.compile(r"(?<![\w=])(\+?\d[\d\s().-]{8,18}\d)(?!\w)")


def _mask_phone(match: re.Match[str]) -> str:
    raw = match.group(1)
    digits = [c for c in raw if c.isdigit()]
    if not 10 <= len(digits) <= 15:
        return raw
    if not raw.startswith("+") and not re.search(r"[\s().-]", raw):
        # A bare run of digits is more likely an id than a phone number.
        return raw
    keep = "".join(digits[-2:])
    return ("+" if raw.startswith("+") else "") + "*" * (len(digits) - 2) + keep


def mask_pii(text: str) -> str:
    """Mask e-mail addresses (``j***@example.com``) and phone numbers (``+*********67``)."""
    if "@" in text:
        text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    if any(c.isdigit() for c in text):
        text = _PHONE.sub(_mask_phone, text)
    return text


def redact_headers(
    headers: Iterable[tuple[str, str]] | Mapping[str, str],
    extra: Iterable[str] = (),
) -> dict[str, str]:
    """Return a copy of ``headers`` with sensitive values replaced by ``[REDACTED]``."""
    sensitive = SENSITIVE_HEADERS | {h.lower() for h in extra}
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k: (REDACTED if k.lower() in sensitive else v) for k, v in items}


def redact_url(url: object, extra_params: Iterable[str] = ()) -> str:
    """Return ``url`` as text with user-info and token-like query values redacted.

    Path segments are masked for e-mail addresses and phone numbers.
    Results are cached: the same URLs recur in every log line and event.
    """
    return _redact_url(str(url), tuple(extra_params))


@functools.lru_cache(maxsize=2048)
def _redact_url(text: str, extra_params: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(text)
    except ValueError:
        return mask_pii(text)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        sensitive = SENSITIVE_QUERY_PARAMS | {p.lower() for p in extra_params}
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED if k.lower() in sensitive else mask_pii(v)) for k, v in pairs],
            safe="[]*@+",
        )
    path = mask_pii(parts.path)
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))
