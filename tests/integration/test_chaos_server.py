"""ChaosServer: what a plain httpx client (or a raw socket) observes for each fault."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import httpx
import pytest

from httpx_resilience.testing import (
    ChaosServer,
    Fault,
    FaultMix,
    RecordedRequest,
    Route,
    upload_headers,
)

# A connection reset surfaces as ReadError (ECONNRESET on recv) or, when the
# pooled connection notices the close first, as RemoteProtocolError.
RESET_ERRORS = (httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError)


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    """A started server, stopped after the test."""
    with ChaosServer() as chaos:
        yield chaos


@pytest.fixture
def client(server: ChaosServer) -> Iterator[httpx.Client]:
    """A sync httpx client pointed at the server."""
    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        yield http


def _raw_exchange(server: ChaosServer, request: bytes, timeout: float = 2.0) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------- #
# Defaults, lifecycle, fixture                                                #
# --------------------------------------------------------------------------- #


def test_default_answer_is_200_json_with_path_method_and_n(client: httpx.Client) -> None:
    """An unprogrammed path answers 200 JSON naming the path, method and request number."""
    first = client.get("/x")
    second = client.get("/x")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.json() == {"ok": True, "path": "/x", "n": 1, "method": "GET"}
    assert second.json()["n"] == 2


def test_url_for_joins_paths_and_queries(server: ChaosServer) -> None:
    """url is http://127.0.0.1:PORT and url_for appends a path with its query string."""
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.url_for("/a?status=503") == f"{server.url}/a?status=503"
    assert server.url_for("b") == f"{server.url}/b"


def test_stop_is_idempotent_and_url_needs_a_running_server() -> None:
    """stop() twice is harmless; url raises once stopped; the port is refused afterwards."""
    chaos = ChaosServer().start()
    port = chaos.port
    chaos.stop()
    chaos.stop()
    assert not chaos.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = chaos.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0)


async def test_async_context_manager_serves_async_clients() -> None:
    """`async with ChaosServer()` serves an httpx.AsyncClient without blocking its loop."""
    async with ChaosServer() as chaos, httpx.AsyncClient(base_url=chaos.url) as http:
        responses = await asyncio.gather(*(http.get(f"/a{i}") for i in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert chaos.count() == 10


def test_chaos_server_fixture_yields_a_started_server(chaos_server: ChaosServer) -> None:
    """The pytest plugin's chaos_server fixture yields a running server."""
    assert chaos_server.running
    assert httpx.get(chaos_server.url_for("/ping?status=418")).status_code == 418


# --------------------------------------------------------------------------- #
# Status sequences, Retry-After, rate limit                                   #
# --------------------------------------------------------------------------- #


def test_query_status_sequence_repeats_the_last_status(client: httpx.Client) -> None:
    """?status=503,503,200 answers 503, 503, then 200 for every later request."""
    codes = [client.get("/seq?status=503,503,200").status_code for _ in range(5)]
    assert codes == [503, 503, 200, 200, 200]


def test_query_sequences_are_counted_per_path_and_query(client: httpx.Client) -> None:
    """Two paths with the same fault query keep separate sequences."""
    assert client.get("/a?status=500,200").status_code == 500
    assert client.get("/b?status=500,200").status_code == 500
    assert client.get("/a?status=500,200").status_code == 200
    assert client.get("/b?status=500,200").status_code == 200


def test_route_statuses_add_retry_after_to_non_2xx_only(
    server: ChaosServer, client: httpx.Client
) -> None:
    """route(statuses=..., retry_after=3) sends Retry-After: 3 on the 503, not on the 200."""
    server.route("/pay", statuses=[503, 200], retry_after=3)
    failed, passed = client.get("/pay"), client.get("/pay")
    assert (failed.status_code, failed.headers["retry-after"]) == (503, "3")
    assert passed.status_code == 200
    assert "retry-after" not in passed.headers


def test_retry_after_http_date_forms(server: ChaosServer, client: httpx.Client) -> None:
    """A datetime route value and ?retry_after_date=N both produce an HTTP-date in the future."""
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    server.route("/dated", status=429, retry_after=when)
    assert client.get("/dated").headers["retry-after"] == "Wed, 02 Jan 2030 03:04:05 GMT"

    header = client.get("/q?status=503&retry_after_date=30").headers["retry-after"]
    delta = parsedate_to_datetime(header) - datetime.now(timezone.utc)
    assert timedelta(seconds=20) < delta <= timedelta(seconds=31)
    assert client.get("/q2?status=503&retry_after=7").headers["retry-after"] == "7"


def test_rate_limit_answers_429_with_retry_after_above_the_rate(client: httpx.Client) -> None:
    """?rate_limit=3 lets 3 requests through per second and answers 429 + Retry-After: 1 above."""
    responses = [client.get("/limited?rate_limit=3") for _ in range(8)]
    codes = [r.status_code for r in responses]
    assert codes[:3] == [200, 200, 200]
    rejected = [r for r in responses if r.status_code == 429]
    assert rejected, codes
    assert all(r.headers["retry-after"] == "1" for r in rejected)


# --------------------------------------------------------------------------- #
# Transport faults                                                            #
# --------------------------------------------------------------------------- #


def test_latency_delays_the_answer(client: httpx.Client) -> None:
    """latency=0.2 makes the answer take at least about that long."""
    started = time.perf_counter()
    response = client.get("/slow?latency=0.2")
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.18


def test_hang_with_client_timeout_raises_read_timeout_and_counts_once(
    server: ChaosServer, client: httpx.Client
) -> None:
    """A hung route makes httpx raise ReadTimeout, and the server counted the request once."""
    server.route("/hang", hang=True)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/hang", timeout=0.2)
    assert server.count("/hang") == 1


async def test_stop_releases_a_hung_connection_quickly() -> None:
    """stop() closes a hung connection: the waiting client fails at once instead of hanging."""
    chaos = ChaosServer().start()
    async with httpx.AsyncClient(timeout=30.0) as http:
        pending = asyncio.create_task(http.get(chaos.url_for("/stuck?hang=1")))
        for _ in range(200):
            if chaos.count("/stuck") == 1:
                break
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        await asyncio.to_thread(chaos.stop)
        with pytest.raises(RESET_ERRORS):
            await pending
    assert time.perf_counter() - started < 5.0


def test_reset_before_headers_raises_a_transport_error(
    server: ChaosServer, client: httpx.Client
) -> None:
    """reset='before_headers' makes httpx raise ReadError (or RemoteProtocolError); counted once."""
    server.route("/rst", reset="before_headers")
    with pytest.raises(RESET_ERRORS):
        client.get("/rst")
    assert server.count("/rst") == 1


def test_reset_after_headers_shows_the_status_then_fails_the_body(client: httpx.Client) -> None:
    """reset='after_headers' lets a streaming client see 200, then reading the body raises."""
    with client.stream("GET", "/rst?reset=after_headers") as response:
        assert response.status_code == 200
        with pytest.raises(RESET_ERRORS):
            response.read()


def test_reset_after_headers_on_a_raw_socket_sends_the_head_then_rst(server: ChaosServer) -> None:
    """On the wire, reset='after_headers' is a full head with Content-Length, then ECONNRESET."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=2.0) as sock:
        sock.sendall(b"GET /r?reset=after_headers HTTP/1.1\r\nHost: x\r\n\r\n")
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"content-length: " in head
        assert head.endswith(b"\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            sock.recv(65536)


def test_truncated_body_raises_remote_protocol_error(client: httpx.Client) -> None:
    """truncate=1 sends less than Content-Length and closes: httpx raises RemoteProtocolError."""
    with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
        client.get("/cut?truncate=1")


def test_drip_delivers_the_body_in_several_slow_pieces(client: httpx.Client) -> None:
    """drip sends the body piecewise: many reads, a complete body, and a longer transfer."""
    started = time.perf_counter()
    with client.stream("GET", "/drip?drip=0.03&drip_chunk=20&body_size=100") as response:
        pieces = list(response.iter_raw())
    assert len(b"".join(pieces)) == 100
    assert len(pieces) >= 3
    assert time.perf_counter() - started >= 0.1  # five 30 ms gaps, measured loosely


def test_drip_defeats_a_short_read_timeout_but_not_patience(client: httpx.Client) -> None:
    """Each dripped piece arrives within the read timeout, so no ReadTimeout fires."""
    response = client.get("/drip2?drip=0.02&body_size=64", timeout=0.5)
    assert response.status_code == 200
    assert len(response.content) == 64


def test_malformed_json_is_labelled_json_but_does_not_parse(client: httpx.Client) -> None:
    """malformed_json=1 answers Content-Type application/json with a body json cannot parse."""
    response = client.get("/bad?malformed_json=1")
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_times_faults_only_the_first_requests(server: ChaosServer, client: httpx.Client) -> None:
    """reset with times=2 fails twice, then the route answers a healthy 200."""
    server.route("/flaky", reset="before_headers", times=2)
    for _ in range(2):
        with pytest.raises(RESET_ERRORS):
            client.get("/flaky")
    assert client.get("/flaky").status_code == 200
    assert server.count("/flaky") == 3


def test_steps_combine_a_fault_per_request(server: ChaosServer, client: httpx.Client) -> None:
    """steps=[reset, 503 + Retry-After, 200] plays out in order and the last step repeats."""
    server.route(
        "/steps",
        steps=[Fault(reset="before_headers"), Fault(status=503, retry_after=1), Fault()],
    )
    with pytest.raises(RESET_ERRORS):
        client.get("/steps")
    second = client.get("/steps")
    assert (second.status_code, second.headers["retry-after"]) == (503, "1")
    assert [client.get("/steps").status_code for _ in range(2)] == [200, 200]


def test_fault_mix_is_reproducible_with_a_seed(server: ChaosServer, client: httpx.Client) -> None:
    """The same FaultMix seed fails the same requests; the mix yields faults and successes."""
    mix = FaultMix(error_503=0.3, error_500=0.1, rate_limited=0.1, seed=7)

    def run() -> list[int]:
        server.reset()
        server.route("/api", mix=mix)
        return [client.get("/api").status_code for _ in range(40)]

    first = run()
    assert first == run()
    assert {200, 503} <= set(first)
    assert set(first) <= {200, 500, 503, 429}


# --------------------------------------------------------------------------- #
# Bodies and headers                                                          #
# --------------------------------------------------------------------------- #


def test_body_forms_and_extra_headers(server: ChaosServer, client: httpx.Client) -> None:
    """body dict → JSON, str → text, bytes → octet-stream; body_size is exact; headers are added."""
    server.route("/dict", body={"items": [1, 2]}, headers={"X-Upstream": "chaos"})
    server.route("/text", body="hello", headers={"Content-Type": "text/csv"})
    server.route("/bytes", body=b"\x00\x01")
    server.route("/big", body_size=200_000)
    as_dict = client.get("/dict")
    assert as_dict.json() == {"items": [1, 2]}
    assert as_dict.headers["x-upstream"] == "chaos"
    assert client.get("/text").headers["content-type"] == "text/csv"
    assert client.get("/text").text == "hello"
    assert client.get("/bytes").headers["content-type"] == "application/octet-stream"
    big = client.get("/big")
    assert len(big.content) == 200_000
    assert big.json()["data"].startswith("x")


def test_echo_returns_the_request(client: httpx.Client) -> None:
    """/echo answers with the request's method, query, headers and body."""
    echoed = client.post("/echo?a=1", content=b"payload", headers={"X-Test": "yes"}).json()
    assert echoed["method"] == "POST"
    assert echoed["query"] == "a=1"
    assert echoed["headers"]["x-test"] == "yes"
    assert echoed["body"] == "payload"


def test_bad_query_value_answers_400_naming_the_parameter(client: httpx.Client) -> None:
    """?status=abc answers 400 with an error naming the parameter."""
    response = client.get("/x?status=abc")
    assert response.status_code == 400
    assert "status" in response.json()["error"]


def test_invalid_programming_is_rejected_early(server: ChaosServer) -> None:
    """Impossible faults raise ValueError at route() time, not inside the server thread."""
    with pytest.raises(ValueError, match="reset"):
        server.route("/x", reset="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="status"):
        server.route("/x", status=200, statuses=[503])
    with pytest.raises(ValueError, match="shares"):
        FaultMix(error_503=0.8, error_500=0.5)
    with pytest.raises(ValueError, match="start with"):
        Route(path="no-slash")


# --------------------------------------------------------------------------- #
# Accounting and HTTP/1.1 plumbing                                            #
# --------------------------------------------------------------------------- #


def test_records_headers_and_proves_a_post_was_sent_once(
    server: ChaosServer, client: httpx.Client
) -> None:
    """Recorded requests keep method, query, body and case-insensitive headers."""
    client.post(
        "/orders?dry=1",
        json={"sku": "A1"},
        headers={"Idempotency-Key": "k-1", "X-Request-Id": "r-1", "Authorization": "Bearer t"},
    )
    assert server.count("/orders") == 1
    [recorded] = server.requests("/orders")
    assert isinstance(recorded, RecordedRequest)
    assert (recorded.method, recorded.query, recorded.json()) == ("POST", "dry=1", {"sku": "A1"})
    assert recorded.headers["idempotency-key"] == "k-1"
    assert recorded.headers["X-Request-ID"] == "r-1"
    assert "authorization" in recorded.headers
    assert recorded.headers.get("Authorization") == "Bearer t"


def test_count_filters_by_path_or_exact_target_and_reset_clears(
    server: ChaosServer, client: httpx.Client
) -> None:
    """count() totals, count(path) ignores the query, count(path?query) is exact; reset() clears."""
    server.route("/p", status=500)
    client.get("/p")
    client.get("/p?x=1")
    client.get("/other")
    assert (server.count(), server.count("/p"), server.count("/p?x=1")) == (3, 2, 1)
    assert [r.target for r in server.requests("/p")] == ["/p", "/p?x=1"]
    server.reset()
    assert server.count() == 0
    assert server.requests() == []
    assert client.get("/p").status_code == 200  # the route is gone too


def test_keep_alive_reuses_one_connection(server: ChaosServer, client: httpx.Client) -> None:
    """Sequential requests from one httpx.Client share a single TCP connection."""
    for _ in range(5):
        client.get("/ka")
    assert server.connections_opened == 1
    assert {r.connection for r in server.requests("/ka")} == {1}


def test_connection_close_is_honoured(server: ChaosServer) -> None:
    """A request with Connection: close gets `connection: close` and then EOF."""
    reply = _raw_exchange(server, b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"connection: close" in head
    assert json.loads(body)["path"] == "/c"


def test_http10_and_pipelined_requests_on_a_raw_socket(server: ChaosServer) -> None:
    """Two pipelined HTTP/1.1 requests then an HTTP/1.0 one get three answers, then EOF."""
    reply = _raw_exchange(
        server,
        b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /p2 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /p3 HTTP/1.0\r\n\r\n",
    )
    assert reply.count(b"HTTP/1.1 200 OK") == 3
    assert server.count() == 3
    assert server.connections_opened == 1


def test_chunked_request_bodies_are_decoded(server: ChaosServer, client: httpx.Client) -> None:
    """Chunked bodies (httpx generators, raw chunks with extensions and trailers) are de-chunked."""

    def parts() -> Iterator[bytes]:
        yield b"abc"
        yield b"def"

    client.post("/up", content=parts())
    _raw_exchange(
        server,
        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n",
    )
    assert [r.body for r in server.requests("/up")] == [b"abcdef", b"Wikipedia"]


def test_malformed_request_line_answers_400(server: ChaosServer) -> None:
    """A request line that is not HTTP gets 400 and the connection is closed."""
    reply = _raw_exchange(server, b"NONSENSE\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 Bad Request")


# --------------------------------------------------------------------------- #
# Silent close, the wider fault mix                                           #
# --------------------------------------------------------------------------- #


def test_close_ends_the_connection_without_announcing_it(server: ChaosServer) -> None:
    """close=1 answers in full with no `connection: close`, then the server closes (EOF)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=2.0) as sock:
        sock.sendall(b"GET /quiet?close=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):  # ends only because the server closed
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"connection:" not in head.lower()
    assert json.loads(body)["path"] == "/quiet"


def _get_after_a_pause(client: httpx.Client, path: str) -> int:
    time.sleep(0.05)
    return client.get(path).status_code


def test_close_makes_a_pooled_client_open_a_new_connection(
    server: ChaosServer, client: httpx.Client
) -> None:
    """After a silent close, httpx's pool notices the dead connection and dials again.

    The pause lets the close land first: a request sent into a connection the
    server is closing meets a reset instead, as with any real server.
    """
    server.route("/quiet", close=True)
    assert [_get_after_a_pause(client, "/quiet") for _ in range(3)] == [200] * 3
    assert server.connections_opened == 3
    assert [r.connection for r in server.requests("/quiet")] == [1, 2, 3]


def _draws(mix: FaultMix, n: int) -> list[Fault | None]:
    import random

    rng = random.Random(mix.seed)
    return [mix.pick(rng, Fault(body_size=300, headers={"X-Kept": "yes"})) for _ in range(n)]


def test_fault_mix_draws_every_new_fault_and_keeps_the_routes_body() -> None:
    """The wider mix yields each fault; the ones that still answer keep the route's body."""
    mix = FaultMix(
        reset_after_headers=0.2, truncate=0.2, slow_body=0.2, close=0.2,
        slow_body_drip=0.002, slow_body_chunk=50, seed=3,
    )
    draws = [d for d in _draws(mix, 400) if d is not None]
    kinds = {
        "after_headers": [d for d in draws if d.reset == "after_headers"],
        "truncate": [d for d in draws if d.truncate],
        "drip": [d for d in draws if d.drip == 0.002 and d.drip_chunk == 50],
        "close": [d for d in draws if d.close],
    }
    assert all(kinds.values()), {k: len(v) for k, v in kinds.items()}
    assert len(draws) == sum(len(v) for v in kinds.values())
    assert all(d.body_size == 300 and d.headers == {"X-Kept": "yes"} for d in draws)
    assert 0.7 < len(draws) / 400 < 0.9  # 80 % drawn, within sampling noise


def test_fault_mix_keeps_its_draws_for_an_old_seed() -> None:
    """Adding shares did not change what an existing mix draws for a seed."""
    mix = FaultMix(error_503=0.3, error_500=0.1, rate_limited=0.1, seed=7)
    statuses = [d.status if d is not None else 200 for d in _draws(mix, 40)]
    again = [d.status if d is not None else 200 for d in _draws(mix, 40)]
    assert statuses == again
    assert {200, 503, 500, 429} == set(statuses)


def test_fault_mix_faults_on_the_wire(server: ChaosServer, client: httpx.Client) -> None:
    """Each new share, alone at 100 %, gives the fault a client sees on the wire."""
    server.route("/cut", body_size=400, mix=FaultMix(truncate=1.0, seed=1))
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/cut")
    server.route("/rst", body_size=400, mix=FaultMix(reset_after_headers=1.0, seed=1))
    with client.stream("GET", "/rst") as response:
        assert response.status_code == 200
        with pytest.raises(RESET_ERRORS):
            response.read()
    server.route(
        "/drip", body_size=400, mix=FaultMix(slow_body=1.0, slow_body_drip=0.001, seed=1)
    )
    with client.stream("GET", "/drip") as response:
        pieces = list(response.iter_raw())
    assert len(b"".join(pieces)) == 400 and len(pieces) >= 2
    server.route("/close", mix=FaultMix(close=1.0, seed=1))
    assert [_get_after_a_pause(client, "/close") for _ in range(3)] == [200] * 3
    serials = [r.connection for r in server.requests("/close")]
    assert len(set(serials)) == 3, serials  # each closed after its answer


def test_fault_mix_rejects_bad_shares_and_values() -> None:
    """Shares outside 0..1 (or not numbers), a sum above 1 and a bad piece size are refused."""
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        FaultMix(close=1.5)
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        FaultMix(truncate=True)
    with pytest.raises(ValueError, match="add up"):
        FaultMix(truncate=0.6, slow_body=0.6)
    with pytest.raises(ValueError, match="slow_body_chunk"):
        FaultMix(slow_body_chunk=0)
    with pytest.raises(ValueError, match="CR, LF"):
        FaultMix(rate_limited=0.1, retry_after="1\r\nX: y")


def test_fault_headers_refuse_what_cannot_go_on_the_wire() -> None:
    """CR, LF, NUL, a colon in the name and non-Latin-1 text are refused at construction."""
    for headers in ({"X-A": "a\0b"}, {"X-A": "a\nb"}, {"X:A": "v"}, {"X-A": "\u20ac"}, {"": "v"}):
        with pytest.raises(ValueError, match=r"Fault\.headers"):
            Fault(headers=headers)
    assert Fault(headers={"RateLimit": "limit=10, remaining=0, reset=\xe9"}).headers


# --------------------------------------------------------------------------- #
# Upload checks and once-only ids                                             #
# --------------------------------------------------------------------------- #


def test_an_upload_that_matches_its_declaration_passes(
    server: ChaosServer, client: httpx.Client
) -> None:
    """Bytes, a chunked generator and a multipart file part are checked and pass."""
    payload = bytes(range(256)) * 40

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(payload), 1000):
            yield payload[start : start + 1000]

    assert client.post("/up", content=payload, headers=upload_headers(payload)).status_code == 200
    assert client.post("/up", content=pieces(), headers=upload_headers(payload)).status_code == 200
    multipart = client.post(
        "/up",
        data={"name": "report"},
        files={"file": ("r.bin", payload, "application/octet-stream")},
        headers=upload_headers(payload),
    )
    assert multipart.status_code == 200
    assert server.uploads_checked == 3
    assert server.upload_mismatches() == []


def test_a_short_or_altered_upload_is_counted_and_answered_422(
    server: ChaosServer, client: httpx.Client
) -> None:
    """A body shorter than declared, one with other bytes, and a multipart without a file fail."""
    payload = b"x" * 1000
    short = client.post(
        "/up", content=payload[:10], headers=upload_headers(payload, once="id-1")
    )
    assert short.status_code == 422
    assert short.json()["reason"] == "length 10 != 1000; sha256 differs"
    altered = client.post("/up", content=b"y" * 1000, headers=upload_headers(payload))
    assert altered.json()["reason"] == "sha256 differs"
    empty = client.post("/up", data={"a": "b"}, files={}, headers=upload_headers(payload))
    assert empty.status_code == 422
    no_file = client.post(
        "/up",
        content=b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--b--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=b", **upload_headers(payload)},
    )
    assert "no file part" in no_file.json()["reason"]
    mismatches = server.upload_mismatches()
    assert [m.received_length for m in mismatches] == [10, 1000, 3, -1]
    assert mismatches[0].once == "id-1"
    assert mismatches[0].expected_length == 1000
    assert server.uploads_checked == 4


def test_once_ids_seen_twice_are_duplicates(server: ChaosServer, client: httpx.Client) -> None:
    """An X-Chaos-Once id that arrives twice is listed with its count; unique ids are not."""
    for once in ("a", "b", "a", "c", "a"):
        client.post("/orders", json={}, headers={"X-Chaos-Once": once})
    assert server.duplicates() == {"a": 3}
    server.reset()
    assert server.duplicates() == {}


def test_stats_summarise_the_accounting(server: ChaosServer, client: httpx.Client) -> None:
    """stats() is JSON-serialisable and carries counts, checks and duplicates."""
    client.get("/a")
    client.post("/up", content=b"abc", headers=upload_headers(b"abd", once="z"))
    client.post("/up", content=b"abc", headers={"X-Chaos-Once": "z"})
    stats = json.loads(json.dumps(server.stats()))
    assert stats["requests"] == 3
    assert stats["by_path"] == {"/a": 1, "/up": 2}
    assert stats["connections_opened"] == 1
    assert (stats["uploads_checked"], stats["upload_mismatches"]) == (1, 1)
    assert stats["mismatch_examples"][0]["reason"] == "sha256 differs"
    assert (stats["duplicates"], stats["duplicate_examples"]) == (1, {"z": 2})
