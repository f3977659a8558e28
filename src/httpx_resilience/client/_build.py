"""From an :class:`HTTPRequest` to the ``httpx.Request`` the pipeline sends.

:class:`~httpx_resilience.AsyncHTTPClient` describes a call as an
:class:`HTTPRequest` (what middlewares see and edit); this mixin turns it into
an ``httpx.Request``: the body encoded (JSON, form, raw), ``Idempotency-Key``,
and the per-request overrides gathered under ``extensions["resilience"]``.

On the lean path (no redirects, no cookie jar) the request is built here
rather than by ``httpx.AsyncClient.build_request``, with the same result:
the same URL joining against ``base_url``, the client's default headers, the
timeout extension. Building it costs most of a request's CPU time, so two
caches keep the repeated work out: parsed URLs per URL string, and the
``Host`` + default-header layout per netloc. A bodyless or bytes-body request
skips ``httpx.Request``'s header normalisation entirely (see
:meth:`RequestBuilder._build_in_memory`).

:class:`RequestBuilder` owns those caches; the facade holds one and calls
:meth:`RequestBuilder.build` once per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from ..exceptions import InvalidRequestError
from ..models import HTTPRequest
from ..observe.redact import redact_url
from ..pipeline import EXTENSION_KEY
from ..serializers import FormSerializer, JSONSerializer
from ._args import (
    check_content,
    check_files,
    check_header_values,
    check_timeout,
    without_userinfo,
)

__all__ = ["RequestBuilder"]

# httpx sends ``Content-Length: 0`` for these methods when there is no body.
_EMPTY_BODY_LENGTH = frozenset({"POST", "PUT", "PATCH"})


class RequestBuilder:
    """Builds the ``httpx.Request`` for each :class:`HTTPRequest` of one client.

    Args:
        client: the client's ``httpx.AsyncClient`` (``httpx.Client`` for
            :class:`~httpx_resilience.HTTPClient`): its ``base_url`` and
            default headers (read on every build, so changes to them apply),
            and its ``build_request`` off the lean path.
        service: the upstream's name, put in the ``"resilience"`` extension.
        lean: build the request here (no redirects, no cookie jar) rather
            than through ``client.build_request``.
        timeout: the client-wide timeout (seconds) for the timeout extension.
    """

    __slots__ = (
        "_client",
        "_default_raw",
        "_form",
        "_host_headers",
        "_json",
        "_lean",
        "_timeout_ext",
        "_url_cache",
        "service",
    )

    def __init__(
        self,
        client: httpx.AsyncClient | httpx.Client,
        service: str | None,
        *,
        lean: bool,
        timeout: float | None,
    ) -> None:
        self._client = client
        self.service = service
        self._lean = lean
        self._json = JSONSerializer()
        self._form = FormSerializer()
        # The client-wide timeout extension, shared by every request without its own.
        self._timeout_ext = httpx.Timeout(timeout).as_dict()
        # Parsed (and base-joined) URLs per URL string: parsing is the largest cost.
        self._url_cache: dict[str, httpx.URL] = {}
        # The Host header plus the client's default headers, per netloc, as
        # httpx.Request would lay them out; rebuilt when the defaults change.
        self._host_headers: dict[bytes, httpx.Headers] = {}
        # The default headers the cached layouts were built from.
        self._default_raw: list[tuple[bytes, bytes]] = []

    def build(self, req: HTTPRequest, *, stream: bool) -> httpx.Request:
        """Encode the body, compose the ``"resilience"`` extension, build the ``httpx.Request``.

        Raises:
            InvalidRequestError: contradictory body arguments, a URL httpx
                cannot parse, or one with no http(s) scheme or host.
        """
        if (req.json is not None) + (req.data is not None) + (req.content is not None) > 1:
            given = [n for n in ("json", "data", "content") if getattr(req, n) is not None]
            raise InvalidRequestError(
                f"Give only one of {', '.join(given)} as the body",
                method=req.method,
                url=req.url,
            )
        headers = dict(req.headers)
        if headers:
            check_header_values(headers)
        if req.timeout is not None:
            check_timeout(req.timeout)
        content: Any = req.content
        if content is not None:
            content = check_content(content, "content")
        files = check_files(req.files) if req.files is not None else None
        data: Any = None
        if req.json is not None:
            content = self._json.dumps(req.json)
            if not _has_header(headers, "content-type"):
                headers["Content-Type"] = self._json.content_type
        elif req.data is not None:
            if files is not None:
                if not isinstance(req.data, Mapping):
                    raise InvalidRequestError(
                        "data must be a mapping of form fields when files are given, got "
                        f"{type(req.data).__name__}",
                        method=req.method,
                        url=req.url,
                    )
                data = req.data
            elif not isinstance(req.data, Mapping):
                content = check_content(req.data, "data")
            else:
                content = self._form.dumps(req.data)
                if not _has_header(headers, "content-type"):
                    headers["Content-Type"] = self._form.content_type
        if req.idempotency_key is not None:
            key = req.idempotency_key
            if type(key) is not str or not key or "\n" in key or "\r" in key or "\0" in key:
                raise InvalidRequestError(
                    f"idempotency_key must be a non-empty str on one line, got {key!r}"[:200],
                    method=req.method,
                    hint="use a UUID string, e.g. str(uuid.uuid4())",
                )
            headers["Idempotency-Key"] = key
        ext: dict[str, Any] = dict(req.extensions)
        overrides = ext.get(EXTENSION_KEY)
        if overrides is not None and not isinstance(overrides, Mapping):
            raise InvalidRequestError(
                f'extensions["resilience"] must be a mapping, got {type(overrides).__name__}',
                method=req.method,
                hint='e.g. extensions={"resilience": {"total_timeout": 5.0}}',
            )
        res: dict[str, Any] = dict(overrides or {})
        if req.timeout is not None:
            res["timeout"] = req.timeout
        if stream:
            res["stream"] = True
        if self.service:
            res.setdefault("service", self.service)
        ext[EXTENSION_KEY] = res
        try:
            if self._lean and not stream:
                request = self._build_lean(req, content, data, files, headers, ext)
            else:
                request = self._client.build_request(
                    req.method,
                    req.url,
                    content=content,
                    data=data,
                    files=files,
                    headers=headers,
                    params=req.params or None,
                    timeout=req.timeout if req.timeout is not None else httpx.USE_CLIENT_DEFAULT,
                    extensions=ext,
                )
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise InvalidRequestError(
                f"Cannot build the request: {exc}",
                method=req.method,
                url=without_userinfo(req.url),
            ) from exc
        url = request.url
        if url.scheme not in ("http", "https") or not url.host:
            raise InvalidRequestError(
                f"URL {redact_url(req.url)!r} has no http(s) scheme or host",
                method=req.method,
                hint="Give an absolute URL such as 'https://api.example.com/items', "
                "or set base_url on the client",
            )
        return request

    def _build_lean(
        self,
        req: HTTPRequest,
        content: Any,
        data: Any,
        files: Any,
        headers: dict[str, str],
        ext: dict[str, Any],
    ) -> httpx.Request:
        """Build the ``httpx.Request`` as ``AsyncClient.build_request`` would, without the client.

        Same URL joining (the base URL always ends in ``/``; a relative path
        is appended to it), the client's default headers, the timeout extension.
        """
        url = self._url_cache.get(req.url)
        if url is None:
            url = httpx.URL(req.url)
            if url.is_relative_url:
                base = self._client.base_url
                url = base.copy_with(raw_path=base.raw_path + url.raw_path.lstrip(b"/"))
            # URL parsing is the largest cost of building a request; paths repeat.
            if len(self._url_cache) >= 512:
                self._url_cache.clear()
            self._url_cache[req.url] = url
        if req.params:
            url = url.copy_merge_params(req.params)
        ext["timeout"] = (
            self._timeout_ext
            if req.timeout is None
            else httpx.Timeout(req.timeout).as_dict()
        )
        method = req.method
        if (
            data is None
            and files is None
            and url.host
            and (
                (content is None and method not in _EMPTY_BODY_LENGTH)
                or (type(content) is bytes and content)
            )
        ):
            return self._build_in_memory(method, url, content, headers, ext)
        merged = self._client.headers.copy()
        if headers:
            merged.update(headers)
        return httpx.Request(
            method, url, content=content, data=data, files=files,
            headers=merged, extensions=ext,
        )

    def _build_in_memory(
        self,
        method: str,
        url: httpx.URL,
        content: bytes | None,
        headers: dict[str, str],
        ext: dict[str, Any],
    ) -> httpx.Request:
        """Build a request with no body or a bytes body, as ``httpx.Request(content=...)`` would.

        ``httpx.Request(content=...)`` encodes the body, then normalises every
        header twice to put ``Host`` first and add ``Content-Length`` (most of
        its ~8 µs). ``httpx.Request(stream=...)`` (public API) takes headers
        as they are; they are laid out here the same way: ``Host``, the
        client's defaults, the caller's headers (replacing defaults of the same
        name), then ``Content-Length`` for a non-empty body unless given.
        Bodyless POST/PUT/PATCH (httpx adds ``Content-Length: 0`` after
        ``Host``) and every other body take the ordinary constructor.
        """
        defaults = self._client.headers.raw
        if defaults != self._default_raw:
            # Someone changed httpx_client.headers: the cached layouts are stale.
            self._default_raw = defaults
            self._host_headers.clear()
        netloc = url.netloc
        base = self._host_headers.get(netloc)
        if base is None:
            base = httpx.Headers([(b"Host", netloc), *defaults])
            if len(self._host_headers) >= 64:
                self._host_headers.clear()
            self._host_headers[netloc] = base
        if headers or content is not None:
            merged = httpx.Headers(base)
            if headers:
                merged.update(headers)
            if content is not None:
                merged.setdefault("Content-Length", str(len(content)))
            base = merged
        request = httpx.Request(
            method, url, headers=base, stream=httpx.ByteStream(content or b""), extensions=ext
        )
        request.read()  # as the content= constructor does, so request.content is there
        return request


def _has_header(headers: Mapping[str, str], lower_name: str) -> bool:
    """Whether ``headers`` has ``lower_name`` (given lower-case), in any case."""
    return any(k.lower() == lower_name for k in headers)
