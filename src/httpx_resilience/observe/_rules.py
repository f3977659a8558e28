"""The process-wide redaction rules: which query parameters, values and shapes are secret.

What :mod:`~httpx_resilience.observe.redact` consults:

* **parameter names** (:class:`ParamRules`; the current snapshot is
  :func:`~httpx_resilience.observe.redact.current_rules`):
  glob patterns (``*token*``, ``code``; case-insensitive), names exempted from
  them, and the names auth handlers registered, which are always secret. The
  rules are an immutable snapshot replaced as a whole on every change, so a
  reader never sees half an update, and its ``generation`` lets caches of
  shown URLs notice a change.
* **secret values**: what auth handlers send (tokens, keys, passwords, client
  secrets), each with the forms it takes on the wire (:func:`secret_forms`).
  Bounded: static secrets keep the newest 128, rotating tokens the newest 64.
* **shapes** (:func:`hide_shapes`): header values that protocol errors quote
  (h11's ``Illegal header value b'...'``, aiohttp's ``Invalid HTTP header:``,
  http.client's, h2's), PEM private keys, JWTs, the credential after
  ``Bearer``/``Basic``; and personal data (:func:`mask_pii`: e-mail addresses
  and phone numbers, masked rather than hidden).

The registries change rarely (a handler is built, a token rotates) and are
read on every redaction, so reads are plain attribute and substring lookups.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

__all__ = [
    "DEFAULT_PARAM_PATTERNS",
    "REDACTED",
    "SENSITIVE_HEADERS",
    "ParamRules",
    "fragments",
    "hide_known",
    "hide_pairs",
    "hide_shapes",
    "lower_names",
    "mask_pii",
    "name_regex",
    "register_secret",
    "secret_forms",
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

DEFAULT_PARAM_PATTERNS: tuple[str, ...] = (
    "*token*", "*secret*", "*key*", "*pass*", "*session*", "*sessid*", "*sig*", "*credential*",
    "jwt", "code", "pwd", "sid", "auth", "authorization",
)
"""Query parameter names hidden by default (case-insensitive; ``*`` matches any run)."""

_WORD = r"[\w.\-\[\]]"  # the characters of a parameter name in free text


def lower_names(names: Iterable[str]) -> list[str]:
    """``names`` lower-cased and stripped (a lone string is one name, not its letters).

    Raises:
        ValueError: a name is empty or not a string.
    """
    if isinstance(names, str):
        names = (names,)
    out = [n.strip().lower() if isinstance(n, str) else "" for n in names]
    if not all(out):
        raise ValueError("a secret parameter name or pattern must be a non-empty string")
    return out


def name_regex(patterns: Iterable[str]) -> re.Pattern[str]:
    """One regex that fully matches a lower-cased name matching any glob of ``patterns``."""
    return re.compile("|".join(re.escape(p).replace(r"\*", ".*") for p in patterns) or "(?!)")


# "name=value" or "name: value" in free text. The value is only looked at, not
# consumed, so that "url: https://h/?token=x" still finds the "token=x" inside.
_PAIR = re.compile(
    r"(?<!" + _WORD + r")(" + _WORD + r"+)(\s*([=:])\s*)(?!\[REDACTED\])(?=([^\s&,;'\"]+))"
)


def fragments(patterns: Iterable[str]) -> tuple[str, ...]:
    """What a secret ``name=value`` pair in free text must contain, for a cheap pre-test.

    The longest literal piece of each glob, and each exact name followed by
    ``=`` (a one-letter name such as ``k`` would be found in most texts).
    Misses only an exact name written ``name = value``, with spaces.
    """
    return tuple({max(p.split("*"), key=len) if "*" in p else f"{p}=" for p in patterns})


def hide_pairs(
    text: str, param: Callable[[str], bool], headers: frozenset[str], needles: Iterable[str]
) -> str:
    """``text`` with the values of secret pairs hidden (``text`` itself when there are none).

    A pair is ``name=value`` where ``param(name)`` is true (a secret query
    parameter), or ``name=value`` / ``name: value`` where ``name`` is in
    ``headers`` (lower-case). A parameter needs ``=``: "status code: 503" is
    not an OAuth code. ``needles`` (lower-case, see :func:`fragments`) are the
    cheap test first: without one of them in the text, no pair can be secret.
    """
    if "=" not in text and ":" not in text:
        return text
    lower = text.lower()
    if not any(h in lower for h in headers) and not any(n in lower for n in needles):
        return text
    out: list[str] = []
    pos = 0
    for match in _PAIR.finditer(text):
        if match.start() < pos:
            continue  # inside a value already hidden
        low = match.group(1).lower()
        if low in headers or (match.group(3) == "=" and param(low)):
            out += (text[pos:match.end()], REDACTED)
            pos = match.end() + len(match.group(4))
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


class ParamRules:
    """One immutable snapshot of the secret query parameter (and header) rules.

    Attributes:
        patterns: lower-case glob patterns of secret parameter names.
        allowed: plain names shown even though a pattern matches them.
        registered: names auth handlers send: secret whatever the other two say.
        generation: increases with every change.
        headers: secret header names, lower-case: the defaults and those
            handlers registered (an API key's own header).
        needles: substrings one of which every secret parameter name contains
            (see :func:`fragments`), a cheap pre-test for free text.
    """

    __slots__ = (
        "_names", "allowed", "generation", "headers", "needles", "patterns", "registered",
    )

    def __init__(
        self,
        patterns: tuple[str, ...],
        allowed: frozenset[str],
        registered: frozenset[str],
        generation: int,
        headers: frozenset[str] = SENSITIVE_HEADERS,
    ) -> None:
        self.patterns = patterns
        self.allowed = allowed
        self.registered = registered
        self.generation = generation
        self.headers = headers
        self._names = name_regex(patterns)
        self.needles = fragments((*patterns, *registered))

    def is_sensitive(self, name: str) -> bool:
        """Whether the value of query parameter ``name`` is hidden."""
        low = name.lower()
        if low in self.registered:
            return True
        return low not in self.allowed and self._names.fullmatch(low) is not None

    def changed(
        self,
        *,
        patterns: tuple[str, ...] | None = None,
        allowed: frozenset[str] | None = None,
        registered: frozenset[str] | None = None,
        headers: frozenset[str] | None = None,
    ) -> ParamRules:
        """A new snapshot with the given fields replaced and the next generation."""
        return ParamRules(
            self.patterns if patterns is None else patterns,
            self.allowed if allowed is None else allowed,
            self.registered if registered is None else registered,
            self.generation + 1,
            self.headers if headers is None else headers,
        )


# -- values known to be secret ---------------------------------------------------------------

MIN_SECRET = 6
_MAX_PINNED, _MAX_TRANSIENT = 128, 64
_lock = threading.Lock()
_pinned: dict[str, tuple[str, ...]] = {}
_transient: dict[str, tuple[str, ...]] = {}
_needles: tuple[str, ...] | None = ()  # every form of every secret, longest first; None: stale


def secret_forms(value: str) -> set[str]:
    """The ways ``value`` is written when it is sent or echoed back.

    The raw text; percent-encoded (``quote`` with and without ``/`` safe, and
    ``quote_plus`` as in a form body; upper- and lower-case hex); JSON-escaped;
    ``repr``-escaped, as text and as bytes.
    """
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value)}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), f) for f in forms}
    forms.add(json.dumps(value)[1:-1])
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    forms.add(repr(value)[1:-1])
    forms.add(repr(value.encode("utf-8", "backslashreplace"))[2:-1])
    return forms


def register_secret(
    value: str | bytes, *, forms: Iterable[str] = (), transient: bool = False
) -> None:
    """Hide ``value``, its :func:`secret_forms` and ``forms`` in every scrubbed text.

    Values shorter than 6 characters are ignored (too likely to occur in
    prose; their encoded forms in ``forms`` still count). ``transient``
    values (rotating tokens) keep the newest 64, others the newest 128.
    Registering a known value again costs one dictionary lookup; a new one a
    few string operations (the search list is rebuilt on the next scrub, so a
    provider that mints a token per request pays no rebuild per request).
    """
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    store = _transient if transient else _pinned
    if text in store:
        return
    extra = tuple(forms)
    all_forms = (secret_forms(text) if len(text) >= MIN_SECRET else set()).union(extra)
    with _lock:
        store[text] = tuple(f for f in all_forms if len(f) >= MIN_SECRET)
        while len(store) > (_MAX_TRANSIENT if transient else _MAX_PINNED):
            del store[next(iter(store))]
        global _needles
        _needles = None


def _current_needles() -> tuple[str, ...]:
    global _needles
    with _lock:
        if _needles is None:
            every = {f for d in (_pinned, _transient) for fs in d.values() for f in fs}
            _needles = tuple(sorted(every, key=len, reverse=True))
        return _needles


def hide_known(text: str, replacement: str = REDACTED) -> str:
    """``text`` with every registered secret form replaced (``text`` itself if none occurs)."""
    needles = _needles
    if needles is None:
        needles = _current_needles()
    for needle in needles:  # substring tests in C: faster than one big regex at this size
        if needle in text:
            text = text.replace(needle, replacement)
    return text


# -- credentials recognised by their shape ---------------------------------------------------

# "Bearer abc.def", "Basic dXNlcjpwdw==": the credential after an auth scheme.
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=-]+)")
_JWT = re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")
_PEM = re.compile(
    r"-----BEGIN[ A-Z]*PRIVATE KEY-----.*?(?:-----END[ A-Z]*PRIVATE KEY-----|$)", re.S
)
# A protocol error that quotes a header (or a whole head line, with the credential in
# it): h11/httpcore "Illegal header value b'...'", "illegal header line: bytearray(b'...')",
# "illegal status line: ..."; http.client "Invalid header value ..."; aiohttp
# "Invalid HTTP header: b'...'", "Invalid header token:\n\n  b'...'", "Bad status line:
# ..."; h2 "... header value surrounded by whitespace b'...'".
_LITERAL_AHEAD = r"(?=\s*[:=]?\s*(?:bytearray\()?b?\\?['\"])"
_HEADER_ERROR = re.compile(
    r"(?i)\b(?:illegal|invalid|forbidden|bad|malformed)\b[^'\"\n]{0,40}?"
    r"\b(?:headers?|status line|request line)\b[^'\"\n]{0,60}?" + _LITERAL_AHEAD
    + r"|\bheader (?:value|name|field|line)\b[^'\"\n]{0,40}?" + _LITERAL_AHEAD
)
_LITERAL_START = re.compile(r"(\s*[:=]?\s*)(bytearray\()?b?(\\?['\"])")
_SECOND_LITERAL = re.compile(r"(\s*[:=]\s*)(bytearray\()?b?(\\?['\"])")


def _hide_credential(match: re.Match[str]) -> str:
    scheme, space, token = match.groups()
    if scheme.lower() == "basic" and not _looks_base64(token):
        return match.group(0)  # prose such as "basic auth failed"
    return f"{scheme}{space}{REDACTED}"


def _looks_base64(token: str) -> bool:
    return len(token) >= 8 and (
        any(c.isdigit() or c in "+/=" for c in token) or any(c.isupper() for c in token[1:])
    )


def _literal_end(text: str, start: int, quote_: str) -> int:
    """The index just past the literal whose opening ``quote_`` ends at ``start`` (or the end)."""
    i, n = start, len(text)
    while i < n:
        if text.startswith(quote_, i):
            return i + len(quote_)
        # Inside a plain literal a backslash escapes the next character; inside a
        # literal quoted by an escaped quote (a repr within a repr), only that closes it.
        i += 2 if text[i] == "\\" and len(quote_) == 1 else 1
    return n


def _hide_header_literals(text: str) -> str:
    out, pos = [], 0
    for match in _HEADER_ERROR.finditer(text):
        if match.start() < pos:
            continue
        out.append(text[pos:match.end()])
        pos = match.end()
        for starts in (_LITERAL_START, _SECOND_LITERAL):  # "invalid header 'x': 'y'"
            lit = starts.match(text, pos)
            if lit is None:
                break
            end = _literal_end(text, lit.end(), lit.group(3))
            body = text[lit.end():end]
            if lit.group(2) and text.startswith(")", end):
                end += 1  # bytearray(b'...')
            out.append(f"{lit.group(1)}{REDACTED}{_why(body)}")
            pos = end
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def _why(body: str) -> str:
    """What was wrong with a quoted header, told without showing it."""
    core = body.rstrip("'\"\\")
    if re.search(r"\\+[rn]$", core):
        return " (it ends with a line break: strip the value)"
    if re.search(r"\\+[rn]", core):
        return " (it contains a line break)"
    if re.search(r"\\+(?:x[0-9a-f]{2}|t|0)", core):
        return " (it contains a control character)"
    return ""


def hide_shapes(text: str) -> str:
    """``text`` without header values quoted by protocol errors, PEM private keys, JWTs
    and credentials after ``Bearer``/``Basic`` (``text`` itself when none occurs)."""
    lower = text.lower()
    if "header" in lower or "line" in lower:
        text = _hide_header_literals(text)
    if "-----BEGIN" in text:
        text = _PEM.sub(REDACTED, text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if "bearer" in lower or "basic" in lower:
        text = _AUTH_SCHEME.sub(_hide_credential, text)
    return text


# -- personal data -----------------------------------------------------------------------

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
