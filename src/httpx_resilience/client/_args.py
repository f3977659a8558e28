"""The arguments of one request, checked before anything is built or sent.

:class:`~httpx_resilience.AsyncHTTPClient` takes what a caller passes
(headers, query parameters, a body, a timeout, overrides) and hands it to
httpx, whose own failures for a wrong type are bare ``TypeError`` /
``ValueError`` / ``AssertionError`` raised from deep inside, sometimes only
once a connection is open, and differently per inner transport. These
functions refuse a bad argument up front with
:class:`~httpx_resilience.InvalidRequestError`, naming the argument and the
fix. Each has a fast path for the usual, well-typed value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import httpx

from ..config import HTTP_METHODS
from ..exceptions import ConfigurationError, InvalidRequestError
from ..pipeline import EXTENSION_KEY

__all__ = [
    "RequestOptions",
    "StreamOptions",
    "check_content",
    "check_files",
    "check_header_values",
    "check_method",
    "check_timeout",
    "check_url_arg",
    "config_headers",
    "max_bytes_of",
    "set_max_bytes",
    "to_dict",
    "to_params",
    "without_userinfo",
]

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_METHOD_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class StreamOptions(TypedDict, total=False):
    """The keywords of ``AsyncHTTPClient.stream``: the request's, by the same names."""

    json: object
    data: object
    files: object
    content: object
    headers: Mapping[str, str] | None
    params: Mapping[str, object] | None
    timeout: float | None
    idempotency_key: str | None
    extensions: Mapping[str, object] | None


class RequestOptions(TypedDict, total=False):
    """The keywords of ``AsyncHTTPClient.get/post/put/patch/delete/head/options``:
    those of :meth:`~httpx_resilience.AsyncHTTPClient.request`, by the same names."""

    json: object
    data: object
    files: object
    content: object
    headers: Mapping[str, str] | None
    params: Mapping[str, object] | None
    timeout: float | None
    idempotency_key: str | None
    extensions: Mapping[str, object] | None
    max_response_bytes: int | None


def to_dict(value: Any, name: str) -> dict[Any, Any]:
    """``headers`` or ``extensions`` as a new ``dict`` (a mapping, or pairs for headers)."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if name == "headers" and not isinstance(value, (str, bytes)):
        try:
            pairs = dict(value)
        except (TypeError, ValueError):
            pass
        else:
            return pairs
    raise InvalidRequestError(
        f"{name} must be a mapping, got {type(value).__name__}",
        hint=f"pass {name} as a dict, e.g. {name}={{'name': 'value'}}",
    )


def config_headers(value: Any) -> dict[Any, Any]:
    """``ClientConfig.headers`` checked as request headers are, as a ``ConfigurationError``."""
    try:
        headers = to_dict(value, "headers")
        check_header_values(headers)
    except InvalidRequestError as exc:
        raise ConfigurationError(f"ClientConfig {exc.message}", field="headers") from exc
    return headers


def to_params(value: Any) -> dict[str, Any]:
    """``params`` as a ``dict``: a mapping, a query string, or ``(name, value)`` pairs."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    try:
        query = httpx.QueryParams(value)
    except (AttributeError, TypeError, ValueError) as exc:
        raise InvalidRequestError(
            f"params must be a mapping, a query string or (name, value) pairs, got "
            f"{type(value).__name__}",
            hint="pass params as a dict, e.g. params={'page': 2}",
        ) from exc
    params: dict[str, Any] = {}
    for key in query:
        values = query.get_list(key)
        params[key] = values[0] if len(values) == 1 else values
    return params


def check_url_arg(url: object) -> str:
    """The ``url`` argument as a ``str`` (a ``str`` or an ``httpx.URL``)."""
    if type(url) is str:
        return url
    if isinstance(url, (str, httpx.URL)):
        return str(url)
    raise InvalidRequestError(
        f"url must be a str or httpx.URL, got {type(url).__name__}",
        hint="e.g. client.get('/items') or client.get('https://api.example.com/items')",
    )


def set_max_bytes(ext: dict[str, Any], value: object) -> int | None:
    """Put a ``max_response_bytes=`` argument into the overrides (the pipeline caps too)."""
    if value is not None and (type(value) is not int or value < 1):
        raise InvalidRequestError(
            f"max_response_bytes must be an int >= 1 or None (no cap), got {value!r}",
            hint="e.g. max_response_bytes=10 * 1024 * 1024",
        )
    res = ext.get(EXTENSION_KEY)
    res = dict(res) if isinstance(res, Mapping) else {}
    res["max_response_bytes"] = value
    ext[EXTENSION_KEY] = res
    return value


def max_bytes_of(ext: Mapping[str, Any], default: int | None) -> int | None:
    """The cap set in ``extensions["resilience"]``, if any (the pipeline validates it)."""
    res = ext.get(EXTENSION_KEY)
    if isinstance(res, Mapping) and "max_response_bytes" in res:
        value = res["max_response_bytes"]
        return value if value is None or type(value) is int else default
    return default


def without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` of its authority removed, parseable or not.

    For an error about a URL that httpx cannot parse (so the redaction that
    parses it cannot either): a password in it must not show.
    """
    scheme, sep, rest = url.partition("//")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:end]
    if "@" not in authority:
        return url
    return f"{scheme}//***@{authority.rsplit('@', 1)[1]}{rest[end:]}"


def check_timeout(value: Any, name: str = "timeout") -> None:
    """A timeout override: ``None`` or a finite number of seconds > 0."""
    if value is None or (type(value) is float and 0 < value < math.inf) or (
        type(value) is int and 0 < value < 2**53
    ):
        return
    raise InvalidRequestError(
        f"{name} must be a finite number of seconds > 0 (or None for the client's), "
        f"got {value!r}",
        hint=f"e.g. {name}=5.0",
    )


def check_header_values(headers: Mapping[str, Any]) -> None:
    """Refuse header names and values that are not strings, or that carry CR, LF or NUL.

    httpx checks some of this only at send time and each inner transport
    fails differently (aiohttp with a bare ``ValueError``); a header that
    could split into two is refused here, for every transport alike.
    """
    for name, value in headers.items():
        if type(name) is not str or type(value) is not str:
            if not isinstance(name, (str, bytes)) or not isinstance(value, (str, bytes)):
                raise InvalidRequestError(
                    f"header {name!r} must have a str name and value, got "
                    f"{type(name).__name__}: {type(value).__name__}",
                    hint="convert header values to str, e.g. {'X-Count': str(n)}",
                )
            name, value = _text(name), _text(value)
        if "\n" in value or "\r" in value or "\0" in value:
            raise InvalidRequestError(
                f"header {name[:64]!r} has a line break or NUL in its value, which would split it",
                hint="remove CR/LF/NUL from header values",
            )
        if not _TOKEN.match(name):
            raise InvalidRequestError(
                f"header name {name[:64]!r} is not a valid HTTP token",
                hint="use letters, digits and !#$%&'*+-.^_`|~ only (no spaces or colons)",
            )


def check_content(value: Any, name: str) -> Any:
    """A raw body (``content=``, or ``data=`` that is not a form): bytes-like, str or async.

    ``bytearray`` and ``memoryview`` become ``bytes``. A sync iterator or file
    is refused: under an async client httpx cannot send it (its own transport
    fails an assertion) and it could not be re-sent for a retry anyway.
    """
    if value is None or type(value) is bytes or type(value) is str:
        return value
    if isinstance(value, (bytes, str)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if hasattr(value, "__aiter__"):
        return value
    raise InvalidRequestError(
        f"{name} must be bytes, str or an async iterator of bytes, got {type(value).__name__}",
        hint="read a file or iterator into bytes first, pass an async iterator of "
        "bytes, or send a file as multipart with files=",
    )


def check_files(files: Any) -> Any:
    """Multipart ``files``: each part checked; a file that cannot seek is sent without a length.

    httpx computes the ``Content-Length`` of a multipart body from each file's
    size on disk (``fstat``), which for a pipe or socket is 0: the body would be
    cut short. Such a file is wrapped so that it has no file descriptor, and
    the body goes chunked. A part must be bytes, str, a binary file object or
    a ``(filename, content[, content_type[, headers]])`` tuple.
    """
    if files is None:
        return None
    if isinstance(files, Mapping):
        items = list(files.items())
    elif isinstance(files, (list, tuple)):
        items = list(files)
    else:
        raise InvalidRequestError(
            f"files must be a mapping of field name to file, got {type(files).__name__}",
            hint="e.g. files={'upload': ('report.csv', open('report.csv', 'rb'))}",
        )
    out = []
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise InvalidRequestError(
                f"files must hold (field name, file) pairs, got {item!r}"[:200]
            )
        field, part = item
        out.append((field, _part(field, part)))
    return out


def _part(field: Any, part: Any) -> Any:
    if isinstance(part, tuple):
        if not 2 <= len(part) <= 4:
            raise InvalidRequestError(
                f"files[{field!r}] must be (filename, content[, content_type[, headers]]), "
                f"a tuple of {len(part)}"
            )
        return (part[0], _content_of(field, part[1]), *part[2:])
    if isinstance(part, (bytes, str)):
        return part
    filename = Path(str(getattr(part, "name", "upload"))).name
    content = _content_of(field, part)
    return part if content is part else (filename, content)


def _content_of(field: Any, content: Any) -> Any:
    if isinstance(content, (bytes, str)):
        return content
    if not callable(getattr(content, "read", None)):
        raise InvalidRequestError(
            f"files[{field!r}] must be bytes, str or a binary file object, got "
            f"{type(content).__name__}",
            hint="open files in binary mode: open(path, 'rb')",
        )
    seekable = getattr(content, "seekable", None)
    try:
        can_seek = bool(seekable()) if callable(seekable) else False
    except (OSError, ValueError):
        can_seek = False
    if not can_seek and callable(getattr(content, "fileno", None)):
        return _Unsized(content)  # a pipe or socket: its fstat size would be 0
    return content


class _Unsized:
    """A non-seekable file, shown to httpx without ``fileno``: its size is unknown."""

    __slots__ = ("_file",)

    def __init__(self, file: Any) -> None:
        self._file = file

    def read(self, size: int = -1) -> Any:
        return self._file.read(size)


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("latin-1")


def check_method(method: str) -> str:
    """An HTTP method, upper-cased; an unknown one is an ``InvalidRequestError``."""
    if type(method) is str and method in HTTP_METHODS:
        return method  # the common case: already a known, upper-case method
    if not isinstance(method, str) or not _METHOD_TOKEN.match(method):
        raise InvalidRequestError(
            f"{method!r} is not an HTTP method",
            hint=f"Use one of {', '.join(sorted(HTTP_METHODS))}",
        )
    upper = method.upper()
    if upper not in HTTP_METHODS:
        raise InvalidRequestError(
            f"Unknown HTTP method {method!r}",
            hint=f"Use one of {', '.join(sorted(HTTP_METHODS))}",
        )
    return upper
