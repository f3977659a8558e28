"""Unit tests of ClientConfig validation, redaction helpers, serializers and the fake clock."""

from __future__ import annotations

import dataclasses
import enum
import logging

import httpx
import pytest

from httpx_resilience import ClientConfig, ConfigurationError, InvalidRequestError
from httpx_resilience.observe.logfilter import RedactingFilter, install_httpx_log_redaction
from httpx_resilience.observe.redact import mask_pii, redact_headers, redact_url
from httpx_resilience.serializers import FormSerializer, JSONSerializer
from httpx_resilience.testing import FakeClock


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"max_connections": 1.5}, "max_connections"),
        ({"max_connections": True}, "max_connections"),
        ({"retry_attempts": 101}, "retry_attempts"),
        ({"retry_statuses": "503"}, "retry_statuses"),
        ({"retry_statuses": {True}}, "retry_statuses"),
        ({"retry_methods": "GET"}, "retry_methods"),
        ({"retry_methods": {1}}, "retry_methods"),
        ({"verify_ssl": "no"}, "verify_ssl"),
        ({"request_id_header": " "}, "request_id_header"),
        ({"retry_budget_ratio": 11}, "retry_budget_ratio"),
        ({"retry_jitter": []}, "retry_jitter"),
        ({"retry_jitter": "FULL"}, "retry_jitter"),
        ({"max_keepalive_connections": -1}, "max_keepalive_connections"),
        ({"total_timeout": 0}, "total_timeout"),
    ],
)
def test_client_config_rejects_bad_values(kwargs: dict[str, object], field: str) -> None:
    """Each bad value raises ConfigurationError naming the field and the allowed range."""
    with pytest.raises(ConfigurationError) as info:
        ClientConfig(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field and field in str(info.value)


def test_client_config_unknown_and_positional_arguments() -> None:
    """Unknown keywords suggest the closest field; positional arguments are refused."""
    with pytest.raises(ConfigurationError, match="did you mean 'retry_attempts'"):
        ClientConfig(retry_atempts=2)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="keyword arguments only"):
        ClientConfig(5.0)  # type: ignore[misc]
    with pytest.raises(ConfigurationError, match=r"no setting 'zzz'$"):
        ClientConfig(zzz=1)  # type: ignore[call-arg]


def test_client_config_is_frozen_and_replaceable() -> None:
    """ClientConfig is immutable; dataclasses.replace re-validates."""
    cfg = ClientConfig(retry_methods=["get", "post"])
    assert cfg.retry_methods == frozenset({"GET", "POST"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.timeout = 1.0  # type: ignore[misc]
    with pytest.raises(ConfigurationError):
        dataclasses.replace(cfg, timeout=-1)


def test_redact_headers_and_extra_names() -> None:
    """Sensitive headers are redacted case-insensitively, plus configured extras."""
    out = redact_headers([("Authorization", "Bearer x"), ("X-Trace", "t"), ("X-Mine", "s")], extra=["x-mine"])
    assert out == {"Authorization": "[REDACTED]", "X-Trace": "t", "X-Mine": "[REDACTED]"}
    assert redact_headers({"Cookie": "a=b"}) == {"Cookie": "[REDACTED]"}


def test_redact_url_userinfo_query_and_path_pii() -> None:
    """User-info, token-like query values, and e-mails/phones in the path are redacted."""
    out = redact_url(
        "https://bob:pw@api.test/users/jane.doe@mail.com/calls/+7 912 345-67-89"
        "?access_token=abc&mine=s&q=ok",
        extra_params=["mine"],
    )
    assert "bob" not in out and "pw" not in out and "abc" not in out and "mine=%5BREDACTED%5D" not in out
    assert "access_token=[REDACTED]" in out and "mine=[REDACTED]" in out and "q=ok" in out
    assert "jane.doe" not in out and "j***@mail.com" in out and "345" not in out
    assert redact_url("http://[::1") == "http://[::1"


def test_mask_pii_keeps_ids_and_timestamps() -> None:
    """Phones and e-mails are masked; bare ids and timestamps are left alone."""
    text = "call +79123456789 or 8 (912) 345-67-89; mail a.b@c.io; id 12345678901234; ts 1700000000; 12-34"
    out = mask_pii(text)
    assert "+*********89" in out and "*********89" in out and "a***@c.io" in out
    assert "12345678901234" in out and "1700000000" in out and "12-34" in out
    assert mask_pii("no digits here") == "no digits here"


def test_httpx_log_filter_redacts_url_arguments() -> None:
    """The filter replaces httpx.URL arguments with their redacted text; installing twice adds one filter."""
    record = logging.LogRecord("httpx", logging.INFO, "f", 1, "HTTP Request: %s %s", (
        "GET", httpx.URL("https://a.test/x?token=s3cret")), None)
    assert RedactingFilter().filter(record)
    assert "s3cret" not in record.getMessage()
    install_httpx_log_redaction("test.logger")
    install_httpx_log_redaction("test.logger")
    assert sum(isinstance(f, RedactingFilter) for f in logging.getLogger("test.logger").filters) == 1


def test_json_serializer_types() -> None:
    """Enums, sets, bytes and nested values serialize; NaN and unknown objects are typed errors."""

    class Color(enum.Enum):
        RED = "red"

    s = JSONSerializer(sort_keys=True)
    assert s.dumps({"b": Color.RED, "a": {1}, "c": b"x", "d": (1, 2)}) == b'{"a":[1],"b":"red","c":"x","d":[1,2]}'
    with pytest.raises(InvalidRequestError):
        s.dumps(float("nan"))
    with pytest.raises(InvalidRequestError):
        s.dumps(object())


def test_form_serializer_rejects_non_mappings() -> None:
    """A form body must be a mapping."""
    with pytest.raises(InvalidRequestError, match="mapping"):
        FormSerializer().dumps([("a", 1)])


async def test_fake_clock_moves_only_when_told() -> None:
    """FakeClock advances on sleep and advance(), never backwards, and records sleeps."""
    clock = FakeClock(start=10.0, wall_start=100.0)
    await clock.sleep(2.5)
    await clock.sleep(-1)
    clock.advance(1.0)
    assert clock.monotonic() == 13.5 and clock.wall() == 103.5 and clock.sleeps == [2.5, 0.0]
    with pytest.raises(ValueError):
        clock.advance(-1)
    assert "FakeClock(now=13.500" in repr(clock)
