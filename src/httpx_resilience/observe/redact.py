"""Redaction of secrets and personal data wherever a request or an error is shown.

What is hidden, by default and process-wide:

* the values of secret headers (:data:`SENSITIVE_HEADERS`: ``Authorization``,
  ``Cookie``, ``X-API-KEY``, ...; and the header an auth handler sends its key
  in, :func:`register_sensitive_header`);
* URL user-info, and the value of every query parameter whose name matches a
  pattern of :func:`sensitive_params` (``*token*``, ``*secret*``, ``*key*``,
  ``*pass*``, ``*session*``, ``*sessid*``, ``*sig*``, ``*credential*``, ``jwt``,
  ``code``, ``pwd``, ``sid``, ``auth``, ``authorization``; case-insensitive, ``*`` is any run of
  characters) or that an auth handler registered (:func:`register_sensitive_param`,
  always hidden: ``APIKeyAuth(key, name="k", location="query")`` hides ``k``);
* in free text (:func:`scrub_text`) and in exceptions (:func:`scrub_exception`):
  header values that protocol errors quote (``Illegal header value b'...'``),
  the credential after ``Bearer``/``Basic``, JWTs, PEM private keys,
  ``name=value`` pairs with a secret name, the URLs as above, and every value
  registered with :func:`register_secret` in its usual encodings;
* phone numbers and e-mail addresses (:func:`mask_pii`).

The patterns are changed with :func:`add_sensitive_params` and
:func:`remove_sensitive_params` (or per observer with a
:class:`~httpx_resilience.observe.redactor.Redactor`). Everything here is
cheap when there is nothing to hide: URLs are cached, and free text is only
searched by the rules whose trigger it contains.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._rules import (
    DEFAULT_PARAM_PATTERNS,
    REDACTED,
    SENSITIVE_HEADERS,
    ParamRules,
    hide_known,
    hide_pairs,
    hide_shapes,
    lower_names,
    mask_pii,
    name_regex,
    register_secret,
    secret_forms,
)

__all__ = [
    "DEFAULT_PARAM_PATTERNS", "REDACTED", "SENSITIVE_HEADERS", "SENSITIVE_QUERY_PARAMS",
    "add_sensitive_params", "current_rules", "is_sensitive_param", "mask_pii", "redact_headers",
    "redact_url", "register_secret", "register_sensitive_header", "register_sensitive_param",
    "remove_sensitive_params", "reset_sensitive_params", "scrub_exception", "scrub_text",
    "secret_forms", "sensitive_headers", "sensitive_params",
]

SENSITIVE_QUERY_PARAMS: frozenset[str] = frozenset(
    {"api_key", "apikey", "api-key", "key", "token", "access_token", "refresh_token",
     "id_token", "client_secret", "secret", "password", "passwd", "signature", "sig",
     "x-amz-signature", "x-amz-credential", "x-amz-security-token", "auth", "code"}
)
"""Well-known secret parameter names (all matched by :data:`DEFAULT_PARAM_PATTERNS` too)."""

# -- query parameter rules (process-wide) ---------------------------------------------------

_MAX_REGISTERED = 256
_lock = threading.Lock()
_rules = ParamRules(DEFAULT_PARAM_PATTERNS, frozenset(), frozenset(), 0)
_registered: dict[str, None] = {}  # the handlers' names, oldest first, bounded
_headers: dict[str, None] = {}  # the handlers' header names, likewise


def current_rules() -> ParamRules:
    """The current snapshot of the secret parameter rules (for caches: its ``generation``)."""
    return _rules


def sensitive_params() -> tuple[str, ...]:
    """The current patterns of secret query parameter names (lower-case)."""
    return _rules.patterns


def add_sensitive_params(*patterns: str) -> None:
    """Hide the values of query parameters matching ``patterns`` (``"x-tenant-*"``, ``"otp"``).

    Process-wide; a name exempted by :func:`remove_sensitive_params` is hidden again.

    Raises:
        ValueError: a pattern is empty.
    """
    global _rules
    new = lower_names(patterns)
    with _lock:
        rules, old = _rules, _rules.patterns
        _rules = rules.changed(
            patterns=old + tuple(p for p in dict.fromkeys(new) if p not in old),
            allowed=rules.allowed - set(new),
        )


def remove_sensitive_params(*names: str) -> None:
    """Show the values of these query parameters again (process-wide).

    A pattern in :func:`sensitive_params` is removed; a plain name is also
    exempted from the wildcard patterns (``remove_sensitive_params("keyword")``
    shows ``keyword=`` despite ``*key*``). The parameter an auth handler sends
    (:func:`register_sensitive_param`) stays hidden whatever is removed.

    Raises:
        ValueError: a name is empty.
    """
    global _rules
    gone = lower_names(names)
    with _lock:
        rules = _rules
        _rules = rules.changed(
            patterns=tuple(p for p in rules.patterns if p not in gone),
            allowed=rules.allowed | {n for n in gone if "*" not in n},
        )


def reset_sensitive_params() -> None:
    """Back to :data:`DEFAULT_PARAM_PATTERNS` (the handlers' names are kept)."""
    global _rules
    with _lock:
        _rules = _rules.changed(patterns=DEFAULT_PARAM_PATTERNS, allowed=frozenset())


def register_sensitive_param(name: str) -> None:
    """Always hide query parameter ``name`` (auth handlers that send one call this).

    Process-wide and bounded: of more than 256 names, the oldest is forgotten.
    Registering a known name again costs one set lookup.
    """
    global _rules
    low = name.lower()
    if low in _rules.registered:
        return
    with _lock:
        _registered[low] = None
        while len(_registered) > _MAX_REGISTERED:
            del _registered[next(iter(_registered))]
        _rules = _rules.changed(registered=frozenset(_registered))


def register_sensitive_header(name: str) -> None:
    """Always hide the value of header ``name`` (an API key sent in a header of its own name).

    Process-wide and bounded like :func:`register_sensitive_param`.
    """
    global _rules
    low = name.lower()
    if low in _rules.headers:
        return
    with _lock:
        _headers[low] = None
        while len(_headers) > _MAX_REGISTERED:
            del _headers[next(iter(_headers))]
        _rules = _rules.changed(headers=SENSITIVE_HEADERS | frozenset(_headers))


def sensitive_headers() -> frozenset[str]:
    """The header names whose values are hidden: the defaults and the registered ones."""
    return _rules.headers


def is_sensitive_param(name: str) -> bool:
    """Whether the value of query parameter ``name`` is hidden by the process-wide rules."""
    return _rules.is_sensitive(name)


# -- headers and URLs ------------------------------------------------------------------------


def redact_headers(
    headers: Iterable[tuple[str, str]] | Mapping[str, str],
    extra: Iterable[str] = (),
) -> dict[str, str]:
    """Return a copy of ``headers`` with sensitive values replaced by ``[REDACTED]``.

    Sensitive: :data:`SENSITIVE_HEADERS`, the names auth handlers registered
    (:func:`register_sensitive_header`) and ``extra``.
    """
    sensitive = _rules.headers | {h.lower() for h in extra}
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k: (REDACTED if k.lower() in sensitive else v) for k, v in items}


def redact_url_with(
    text: str,
    sensitive: Callable[[str], bool],
    pii: bool,
    path: Callable[[str], str] | None = None,
) -> str:
    """``text`` (a URL) with user-info and the values of ``sensitive`` parameters hidden.

    With ``pii``, e-mails and phone numbers in the path and query values are
    masked (and the path is passed through ``path`` when given). Text that
    does not parse as a URL is scrubbed as free text.
    """
    try:
        parts = urlsplit(text)
    except ValueError:
        # rare: e.g. user-info already shown as "[REDACTED]@" makes urlsplit refuse the host
        shown = scrub_with(text, sensitive, _rules.headers, ("",), None)
        return mask_pii(shown) if pii else shown
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        query = urlencode(
            [
                (k, REDACTED if sensitive(k) else (mask_pii(v) if pii else v))
                for k, v in parse_qsl(query, keep_blank_values=True)
            ],
            safe="[]*@+",
        )
    shown_path = parts.path  # no authority (http:/u:pw@host): user-info may sit in the path
    if not netloc and "@" in shown_path:
        shown_path = _PATH_USERINFO.sub(lambda m: f"{m[1]}{REDACTED}@", shown_path, 1)
    shown_path = mask_pii(shown_path) if pii else shown_path
    if pii and path is not None:
        shown_path = path(shown_path)
    return urlunsplit((parts.scheme, netloc, shown_path, query, parts.fragment))


_PATH_USERINFO = re.compile(r"^(/*)[^/@]*@")


def redact_url(url: object, extra_params: Iterable[str] = ()) -> str:
    """Return ``url`` as text with user-info and secret query values redacted.

    Secret parameters are those of the process-wide rules plus ``extra_params``
    (names or patterns). Path segments are masked for e-mail addresses and
    phone numbers. Results are cached: the same URLs recur in every log line
    and event, and a URL without query or user-info is returned as it is.
    """
    rules = _rules
    return _redact_url(str(url), tuple(extra_params) if extra_params else (), rules)


@functools.lru_cache(maxsize=2048)
def _redact_url(text: str, extra_params: tuple[str, ...], rules: ParamRules) -> str:
    # The rules are part of the key: a change of rules is a new entry, not a stale one.
    sensitive = rules.is_sensitive
    if extra_params:
        extra = name_regex(lower_names(extra_params))

        def sensitive(name: str) -> bool:
            return rules.is_sensitive(name) or extra.fullmatch(name.lower()) is not None

    return redact_url_with(text, sensitive, True)


# -- free text -------------------------------------------------------------------------------

_URL_REST = re.compile(r"[^\s'\"<>\\]*")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")


def _hide_urls(text: str, url: Callable[[str], str]) -> str:
    """Each ``scheme://...`` in ``text`` shown through ``url`` (found without a regex scan)."""
    out: list[str] = []
    pos = 0
    i = text.find("://")
    while i != -1:
        start = i
        while start > pos and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        end = _URL_REST.match(text, i + 3).end()  # type: ignore[union-attr]
        if start < i and text[start].isalpha():
            out += (text[pos:start], url(text[start:end]))
            pos = end
        i = text.find("://", max(end, i + 3))
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def scrub_text(text: str) -> str:
    """``text`` with every secret the rules above recognise replaced by ``[REDACTED]``.

    For exception messages and other free text (PII is not masked here; see
    :func:`mask_pii`). Returns ``text`` itself (the same object) when nothing
    was hidden; a text without any trigger (``://``, ``=``, ``Bearer``, a
    header error, a registered secret...) costs a few substring tests.
    """
    if not text:
        return text
    rules = _rules
    shown = scrub_with(text, rules.is_sensitive, rules.headers, rules.needles, redact_url)
    return text if shown == text else shown


def scrub_with(
    text: str,
    param: Callable[[str], bool],
    headers: frozenset[str],
    needles: Iterable[str],
    url: Callable[[str], str] | None,
) -> str:
    """:func:`scrub_text` with other rules (a ``Redactor``'s).

    Args:
        text: the text to scrub.
        param: whether a query parameter name is secret (in ``name=value``).
        headers: secret header names, lower-case (in ``name: value``).
        needles: lower-case substrings one of which every secret parameter name contains.
        url: shows each URL found in the text; ``None`` leaves URLs to the other rules.
    """
    text = hide_shapes(text)
    if url is not None and "://" in text:
        text = _hide_urls(text, url)
    return hide_known(hide_pairs(text, param, headers, needles))


def scrub_exception(exc: BaseException) -> None:
    """Rewrite ``exc`` in place so that its text shows no secret (see :func:`scrub_text`).

    Its ``args``, string attributes (``message``, ``reason``, ``hint``, ...)
    and notes are scrubbed, and so are those of the exceptions it carries:
    ``__cause__``, ``__context__``, exceptions among its args (httpcore wraps
    h11's) and group members, at most 16 in all. aiohttp's ``request_info``
    loses its secret headers and query values. Never raises; costs a few
    microseconds when there is nothing to hide.
    """
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < _MAX_CHAIN:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        # An exotic exception (read-only attributes...) must not break the caller's
        # error handling; the exceptions it links to are still scrubbed.
        with contextlib.suppress(Exception):
            _scrub_one(current, todo)
        for linked in (current.__context__, current.__cause__):
            if linked is not None:
                todo.append(linked)
        members = getattr(current, "exceptions", None)  # an exception group's
        if isinstance(members, tuple):
            todo.extend(m for m in members if isinstance(m, BaseException))


_MAX_CHAIN = 16
_TEXT_ATTRS = ("message", "msg", "reason", "strerror", "hint", "url", "detail", "description")


def _scrub_value(value: object, todo: list[BaseException]) -> object:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, bytes):
        text = value.decode("latin-1")
        shown = scrub_text(text)
        return value if shown is text else shown.encode("latin-1", "replace")
    if isinstance(value, BaseException):
        todo.append(value)
    return value


def _scrub_one(exc: BaseException, todo: list[BaseException]) -> None:
    args = exc.args
    new = tuple(_scrub_value(a, todo) for a in args)
    if any(a is not b for a, b in zip(new, args, strict=True)):
        exc.args = new
    attrs = getattr(exc, "__dict__", None) or {}
    for name in _TEXT_ATTRS:
        value = attrs.get(name)
        if isinstance(value, str):
            shown = scrub_text(value)
            if shown is not value:
                setattr(exc, name, shown)
    notes = attrs.get("__notes__")
    if isinstance(notes, list):
        notes[:] = [scrub_text(n) if isinstance(n, str) else n for n in notes]
    info = attrs.get("request_info")
    if info is not None and hasattr(info, "_replace"):  # aiohttp's, with the request headers
        shown = info._replace(
            headers={k: scrub_text(v) for k, v in redact_headers(info.headers).items()},
            url=type(info.url)(redact_url(info.url)),
            real_url=type(info.real_url)(redact_url(info.real_url)),
        )
        exc.request_info = shown  # type: ignore[attr-defined]
        exc.args = tuple(shown if a is info else a for a in exc.args)
