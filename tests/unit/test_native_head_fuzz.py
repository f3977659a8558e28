"""NativeTransport's response parsing fuzzed against h11: random responses, valid and broken, in random reads.

Each example is a response (interim heads, a status line, header fields with
odd names, values and obs-folds, a body framed by Content-Length, chunked with
extensions and trailers, or by the close) that may then be broken (a byte
changed, inserted or cut), and cut into random reads. The same bytes go to
h11 (what httpx's own transport parses with) and to NativeTransport's
connection, driven directly (``data_received`` per read, then the server's
close), and once over real loopback sockets.

Agreement: when both accept, the same status, reason, version, raw header
list and body. When h11 refuses, NativeTransport raises a typed httpx error.
When only NativeTransport refuses, the bytes must fall in one of the
documented cases where llhttp is stricter (:func:`stricter_than_h11`). Never a
bare exception, never a hang (every wait is bounded).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from typing import Any, Final

import h11
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from httpx_resilience.transports import NativeTransport
from httpx_resilience.transports.native._connection import H1Connection

WAIT: Final = 2.0  # the longest any example may take to settle: longer is a hang
LIMITS: Final = {"max_head_bytes": 64 * 1024, "max_headers": 100}
FUZZ: Final = settings(
    # NATIVE_FUZZ_EXAMPLES=20000 for a deeper run by hand
    max_examples=int(os.environ.get("NATIVE_FUZZ_EXAMPLES", "200")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- responses --------------------------------------------------------------------------

TOKEN: Final = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
names = st.one_of(
    st.sampled_from(["X-A", "Server", "Vary", "Set-Cookie", "ETag", "x-lower", "X-Folded"]),
    st.text(alphabet=TOKEN, min_size=1, max_size=8),
    # sometimes not a token: a space, a colon, a control or non-ASCII byte
    st.text(alphabet=TOKEN + " :@\x00\x7f\x01é", min_size=0, max_size=6),
).map(lambda s: s.encode("latin-1"))
value_bytes = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=16),
    st.text(alphabet=st.sampled_from(" \tabc\x80\xff\x00\x01\x7f\r"), max_size=8),
).map(lambda s: s.encode("latin-1"))
folds = st.lists(st.tuples(st.sampled_from([b" ", b"\t", b"  ", b" \t"]), value_bytes), max_size=2)
reasons = st.one_of(
    st.sampled_from([b"OK", b"", b"Not Found", b"Very  Odd\tReason"]),
    st.text(alphabet=st.sampled_from("ab \t\x80\x00\x7f"), max_size=6).map(
        lambda s: s.encode("latin-1")
    ),
)


@st.composite
def fields(draw: st.DrawFn) -> bytes:
    """Header lines: ``Name: value`` (perhaps folded onto more lines), each ending in CR LF."""
    lines = b""
    for _ in range(draw(st.integers(0, 6))):
        name = draw(names)
        sep = draw(st.sampled_from([b": ", b":", b":  ", b": \t", b" : "]))
        lines += name + sep + draw(value_bytes)
        for lead, more in draw(folds):
            lines += b"\r\n" + lead + more
        lines += b"\r\n"
    return lines


@st.composite
def chunked_body(draw: st.DrawFn, body: bytes) -> bytes:
    out = b""
    rest = body
    while rest:
        n = draw(st.integers(1, len(rest)))
        size = draw(st.sampled_from([b"%x", b"%X", b"0%x", b"%x"])) % n
        ext = draw(
            st.sampled_from([b"", b";a=b", b";flag", b' ;q="x y"', b";", b';a="\\""', b"; a = b"])
        )
        out += size + ext + b"\r\n" + rest[:n] + b"\r\n"
        rest = rest[n:]
    out += b"0" + draw(st.sampled_from([b"", b";last", b"000"])) + b"\r\n"
    out += draw(
        st.sampled_from(
            [
                b"",
                b"X-Trailer: t\r\n",
                b"A: 1\r\nB: 2\r\n",
                b"A: 1\r\n  folded\r\n",
                b"Content-Length: 9\r\n",
            ]
        )
    )
    return out + b"\r\n"


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    """One response, well formed or nearly."""
    raw = b""
    for _ in range(draw(st.integers(0, 2))):
        code = draw(st.sampled_from([100, 102, 103]))
        raw += b"HTTP/1.1 %d Info\r\n%b\r\n" % (code, draw(fields()))
    version = draw(
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"http/1.1"])
    )
    status = draw(
        st.one_of(
            st.integers(200, 599).map(lambda n: b"%d" % n),
            st.sampled_from([b"204", b"304", b"101", b"099", b"99", b"1000", b"2x0"]),
        )
    )
    reason = draw(reasons)
    space = draw(st.sampled_from([b" ", b" ", b""]))
    head = version + b" " + status + (space + reason if space else b"") + b"\r\n"
    head += draw(fields())
    bulk = draw(
        st.sampled_from(["", "", "", "", "", "", "", "", "long value", "huge value", "many fields"])
    )
    if bulk == "long value":
        head += b"X-Long: " + b"v" * 30_000 + b"\r\n"
    elif bulk == "huge value":  # past both limits (h11's is the same 64 KiB here)
        head += b"X-Huge: " + b"v" * 100_000 + b"\r\n"
    elif bulk == "many fields":  # past max_headers, not past the head's bytes
        head += b"".join(b"X-%d: v\r\n" % i for i in range(150))
    body = draw(st.binary(max_size=40))
    framing = draw(
        st.sampled_from(["length", "chunked", "close", "odd-length", "odd-chunked", "both"])
    )
    if framing == "length":
        name = draw(st.sampled_from([b"Content-Length", b"content-length", b"CONTENT-LENGTH"]))
        head += name + b": %d\r\n" % len(body)
    elif framing == "odd-length":
        value = draw(
            st.sampled_from(
                [
                    b"%d" % (len(body) + 5),
                    b"0",
                    b"+%d",
                    b"0%d",
                    b"%d, %d",
                    b"%d ,%d",
                    b"",
                    b"-1",
                    b"1e2",
                    b"0x1",
                ]
            )
        )
        head += b"Content-Length: " + value.replace(b"%d", b"%d" % len(body)) + b"\r\n"
    elif framing in ("chunked", "odd-chunked", "both"):
        coding = b"chunked"
        if framing == "odd-chunked":
            coding = draw(
                st.sampled_from(
                    [
                        b"Chunked",
                        b"gzip, chunked",
                        b"chunked, gzip",
                        b"chunked,",
                        b" chunked",
                        b"identity",
                    ]
                )
            )
        head += b"Transfer-Encoding: " + coding + b"\r\n"
        if framing == "both":
            head += b"Content-Length: %d\r\n" % len(body)
        body = draw(chunked_body(body))
    if draw(st.integers(0, 4)) == 0:
        head += draw(
            st.sampled_from(
                [
                    b"Connection: close\r\n",
                    b"Connection: keep-alive\r\n",
                    b"Connection: upgrade\r\nUpgrade: x\r\n",
                ]
            )
        )
    raw += head + b"\r\n" + body
    if draw(st.booleans()):
        raw += draw(st.sampled_from([b"", b"HTTP/1.1 200 OK\r\n\r\n", b"garbage"]))
    return raw


@st.composite
def broken(draw: st.DrawFn) -> bytes:
    """A response, sometimes with one byte changed, inserted or removed, or cut short."""
    raw = draw(responses())
    for _ in range(draw(st.integers(0, 2))):
        how = draw(st.sampled_from(["change", "insert", "delete", "cut"]))
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        byte = bytes([draw(st.sampled_from([0, 9, 10, 13, 32, 58, 59, 0x7F, 0xFF, 0x41, 0x30]))])
        if how == "change":
            raw = raw[:at] + byte + raw[at + 1 :]
        elif how == "insert":
            raw = raw[:at] + byte + raw[at:]
        elif how == "delete":
            raw = raw[:at] + raw[at + 1 :]
        else:
            raw = raw[:at]
    return raw


@st.composite
def segmented(draw: st.DrawFn) -> list[bytes]:
    """A (maybe broken) response cut into reads at random places."""
    raw = draw(broken())
    cuts = sorted(set(draw(st.lists(st.integers(1, max(len(raw) - 1, 1)), max_size=8))))
    edges = [0, *[c for c in cuts if c < len(raw)], len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(edges) if b > a]


# -- the two parsers ------------------------------------------------------------------------

Outcome = tuple[Any, ...]


def h11_outcome(segments: list[bytes]) -> Outcome:
    """What h11 makes of the reads, then the server's close."""
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=LIMITS["max_head_bytes"])
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "example.test")]))
    conn.send(h11.EndOfMessage())
    head: h11.Response | None = None
    body = b""
    try:
        for data in [*segments, b""]:
            conn.receive_data(data)
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    break
                if isinstance(event, h11.Response):
                    head = event
                    if event.status_code == 101:
                        return ("upgrade",)
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    assert head is not None
                    return (
                        "response",
                        head.status_code,
                        bytes(head.reason),
                        b"HTTP/" + bytes(head.http_version),
                        [(bytes(k), bytes(v)) for k, v in head.headers.raw_items()],
                        body,
                    )
    except h11.RemoteProtocolError:
        return ("refused",)
    raise AssertionError("h11 neither finished nor refused")  # pragma: no cover


class Wire(asyncio.Transport):
    """The socket under an H1Connection, in memory: writes are kept; close reports the loss."""

    def __init__(self, conn: H1Connection) -> None:
        super().__init__()
        self.conn = conn
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.conn.connection_lost, None)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def native_outcome(segments: list[bytes]) -> Outcome:
    """What NativeTransport's connection makes of the reads, then the server's close."""
    loop = asyncio.get_running_loop()
    conn = H1Connection(
        loop,
        ("http", "example.test", 80),
        lambda c: None,
        LIMITS["max_head_bytes"],
        LIMITS["max_headers"],
    )
    wire = Wire(conn)
    conn.connection_made(wire)
    request = httpx.Request("GET", "http://example.test/")
    exchange = loop.create_task(
        conn.exchange(request, b"GET / HTTP/1.1\r\n\r\n", b"", False, {"read": WAIT})
    )
    for data in segments:
        await asyncio.sleep(0)
        if wire.closing:
            break
        conn.data_received(data)
    await asyncio.sleep(0)
    wire.close()  # the server closes after the last read
    try:
        status, headers, extensions, content = await asyncio.wait_for(exchange, WAIT)
        if content is None:
            content = b""
            while part := await asyncio.wait_for(conn.read_body(WAIT), WAIT):
                content += part
    except asyncio.TimeoutError:  # pragma: no cover - a hang is a failure
        raise AssertionError("NativeTransport hung") from None
    except httpx.HTTPError as exc:
        return ("raised", type(exc), str(exc))
    return (
        "response",
        status,
        extensions["reason_phrase"],
        extensions["http_version"],
        headers,
        content,
    )


# -- agreement ---------------------------------------------------------------------------------


def header_text(raw: bytes) -> bytes:
    """The header lines of ``raw``'s heads (interim and final, no status line) and of its trailers."""
    out, pos = b"", 0
    while True:
        first = raw.find(b"\r\n", pos)
        end = raw.find(b"\r\n\r\n", pos)
        if first < 0 or end < 0:
            return out + raw[pos:]  # a head that does not end: all of it
        out += raw[first + 2 : end + 4]
        interim = raw[pos + 9 : pos + 10] == b"1" and raw[pos + 9 : pos + 12] != b"101"
        pos = end + 4
        if not interim:
            break
    last_chunk = re.search(rb"(?:^|\r\n)0+(?:;[^\r\n]*)?\r\n", raw[pos:])
    if last_chunk is not None and b"chunked" in out.lower():
        out += raw[pos + last_chunk.end() :]
    return out


def stricter_than_h11(raw: bytes) -> str | None:
    """Why NativeTransport may refuse bytes h11 takes (each allowed by the RFCs), or ``None``."""
    head = header_text(raw)
    if len(head) > LIMITS["max_head_bytes"] - 100:
        return (
            "a head past max_head_bytes (h11 checks its own bound only while a head is incomplete)"
        )
    if head.count(b"\r\n") > LIMITS["max_headers"]:
        return "more than max_headers fields (h11 bounds only the head's bytes)"
    lower = head.lower()
    if re.search(rb"(?<!\r)\n", head) or re.search(rb"(?<!\r)\n", raw[: raw.find(b"\r\n")]):
        return "a bare LF as a line end (RFC 9112 §2.2: MAY)"
    if b"transfer-encoding" in lower and b"content-length" in lower:
        return "both framings (RFC 9112 §6.3: ought to be an error)"
    if re.search(rb"content-length:[^\r\n]*,", lower) or lower.count(b"content-length:") > 1:
        return "a repeated Content-Length (RFC 9110 §8.6: MAY reject)"
    if re.search(rb"(?:^|\n)[^\r\n:]*[ \t]:", head):
        return "whitespace before a colon (RFC 9112 §5.1: MUST reject)"
    if re.search(rb"(?:^|\r\n)[0-9a-fA-F]+[ \t]*;[ \t]*(?:\r\n|;)", raw):
        return "a chunk extension without a name (RFC 9112 §7.1.1)"
    token = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
    for ext in re.findall(rb"(?:^|\r\n)[0-9a-fA-F]+(;[^\r\n]*)\r\n", raw):
        if re.search(rb"[ \t]", re.sub(rb'"(?:[^"\\]|\\.)*"', b"", ext)):
            return "whitespace around ';' or '=' in a chunk extension (BWS; llhttp has no leniency for it)"
        if not re.fullmatch(rb'(?:;%b(?:=(?:%b|"(?:[^"\\]|\\.)*"))?)+' % (token, token), ext):
            return (
                "a chunk extension other than token[=value] (RFC 9112 §7.1.1; h11 takes any bytes)"
            )
    if b"chunked" in head.lower() and re.search(rb"\r\n0[^\r\n]*\r\n(?:[^\r\n]*\r\n)*[ \t]", raw):
        return "an obs-fold in the trailer section (llhttp refuses; trailers are dropped anyway)"
    if re.search(rb"[\x01-\x08\x0e-\x1f\x7f]", head):
        return "a control character in a field (RFC 9110 §5.5: VCHAR, obs-text, SP, HTAB only)"
    return None


def assert_agrees_with_h11(segments: list[bytes], mine: Outcome, theirs: Outcome) -> None:
    raw = b"".join(segments)
    if theirs[0] == "response":
        # h11 hands a Transfer-Encoding value over in lower case; the bytes said otherwise.
        headers = [(k, v.lower() if k.lower() == b"transfer-encoding" else v) for k, v in theirs[4]]
        theirs = (*theirs[:4], headers, theirs[5])
        if mine[0] == "response":
            mine = (
                *mine[:4],
                [(k, v.lower() if k.lower() == b"transfer-encoding" else v) for k, v in mine[4]],
                mine[5],
            )
            assert mine == theirs, raw
        else:
            assert mine[1] is httpx.RemoteProtocolError, (mine, raw)
            assert stricter_than_h11(raw) is not None, (mine, theirs, raw)
    else:
        # h11 refuses (or the server switched protocols): a typed httpx error, never a response
        assert mine[0] == "raised", (mine, theirs, raw)
        assert issubclass(mine[1], httpx.TransportError), mine


@FUZZ
@given(segments=segmented())
def test_connection_agrees_with_h11(segments: list[bytes]) -> None:
    """The connection, fed the reads directly, agrees with h11 (or is stricter where documented)."""
    mine = asyncio.run(native_outcome(segments))
    assert_agrees_with_h11(segments, mine, h11_outcome(segments))


async def socket_outcome(segments: list[bytes]) -> Outcome:
    """What NativeTransport makes of the reads played by a loopback server, then its close."""

    async def play(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            for data in segments:
                writer.write(data)
                await writer.drain()
                for _ in range(2):  # let the client read this piece on its own
                    await asyncio.sleep(0)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up first
        finally:
            writer.close()

    server = await asyncio.start_server(play, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = NativeTransport(**LIMITS)
    timeout = {"connect": WAIT, "read": WAIT, "write": WAIT, "pool": WAIT}
    try:
        request = httpx.Request("GET", f"http://127.0.0.1:{port}/", extensions={"timeout": timeout})
        response = await asyncio.wait_for(transport.handle_async_request(request), WAIT)
        try:
            body = await asyncio.wait_for(response.aread(), WAIT)
        finally:
            await response.aclose()
    except asyncio.TimeoutError:  # pragma: no cover - a hang is a failure
        raise AssertionError("NativeTransport hung") from None
    except httpx.HTTPError as exc:
        return ("raised", type(exc), str(exc))
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()
    ext = response.extensions
    return (
        "response",
        response.status_code,
        ext["reason_phrase"],
        ext["http_version"],
        list(response.headers.raw),
        body,
    )


@FUZZ
@given(segments=segmented())
def test_transport_over_loopback_agrees_with_h11(segments: list[bytes]) -> None:
    """NativeTransport over a real loopback socket, the server writing the reads, agrees with h11."""
    mine = asyncio.run(socket_outcome(segments))
    assert_agrees_with_h11(segments, mine, h11_outcome(segments))
