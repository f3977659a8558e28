"""Defaults never contradict what the caller set: ClientConfig, Settings (keywords, variables, file) and services."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from httpx_resilience import BaseAPIClient, ClientConfig, ConfigurationError, StoreClient
from httpx_resilience.config import ADAPTIVE_FIELDS, as_default, is_default
from httpx_resilience.settings import ServiceSettings, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HTTP_CLIENT_* or STORE_API_* variable leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith(("HTTP_CLIENT_", "STORE_API_")):
            monkeypatch.delenv(name)


# -- ClientConfig ----------------------------------------------------------------------


def test_keepalive_default_follows_a_smaller_pool() -> None:
    """ClientConfig(max_connections=10) keeps at most 10 idle connections instead of failing."""
    assert ClientConfig(max_connections=10).max_keepalive_connections == 10
    assert ClientConfig(max_connections=1).max_keepalive_connections == 1
    assert ClientConfig(max_connections=50).max_keepalive_connections == 20
    assert ClientConfig().max_keepalive_connections == 20


def test_pool_default_follows_a_larger_keepalive_count() -> None:
    """ClientConfig(max_keepalive_connections=150) grows the default pool to 150."""
    assert ClientConfig(max_keepalive_connections=150).max_connections == 150
    assert ClientConfig(max_keepalive_connections=5).max_connections == 100


def test_attempt_timeout_default_follows_a_shorter_total() -> None:
    """ClientConfig(total_timeout=0.5) gives each attempt 0.5 s instead of failing."""
    assert ClientConfig(total_timeout=0.5).timeout == 0.5
    assert ClientConfig(total_timeout=60).timeout == 30.0
    assert ClientConfig().timeout == 30.0


@pytest.mark.parametrize(
    ("kwargs", "field", "other"),
    [
        ({"max_connections": 10, "max_keepalive_connections": 11}, "max_keepalive_connections", "max_connections"),
        ({"timeout": 1, "total_timeout": 0.5}, "timeout", "total_timeout"),
    ],
)
def test_two_given_values_that_contradict_are_refused(kwargs: dict[str, Any], field: str, other: str) -> None:
    """Only two explicit values can contradict; the error names both fields and the fix."""
    with pytest.raises(ConfigurationError) as info:
        ClientConfig(**kwargs)
    text = str(info.value)
    assert info.value.field == field and field in text and other in text and "unset" in text


def test_given_values_at_the_bound_are_accepted() -> None:
    """Equal explicit values do not contradict."""
    cfg = ClientConfig(max_connections=7, max_keepalive_connections=7, timeout=2, total_timeout=2)
    assert (cfg.max_keepalive_connections, cfg.timeout) == (7, 2)
    assert cfg.default_fields == frozenset()


def test_default_fields_tell_given_from_default() -> None:
    """default_fields lists the adaptive fields that were not given."""
    assert ClientConfig().default_fields == ADAPTIVE_FIELDS
    assert ClientConfig(max_connections=10).default_fields == {"timeout", "max_keepalive_connections"}
    assert ClientConfig(timeout=30.0).default_fields == {"max_connections", "max_keepalive_connections"}


def test_replace_readapts_an_adapted_default() -> None:
    """dataclasses.replace: a default adapted to an old value adapts to the new one."""
    small = ClientConfig(max_connections=10)
    assert dataclasses.replace(small, max_connections=50).max_keepalive_connections == 20
    assert dataclasses.replace(small, max_connections=4).max_keepalive_connections == 4
    short = ClientConfig(total_timeout=0.5)
    assert dataclasses.replace(short, total_timeout=None).timeout == 30.0
    assert dataclasses.replace(short, total_timeout=5).timeout == 5.0
    wide = ClientConfig(max_keepalive_connections=150)
    assert dataclasses.replace(wide, max_keepalive_connections=10).max_connections == 100


def test_replace_makes_the_replaced_field_given() -> None:
    """A replaced field is explicit: it no longer adapts, and can now contradict."""
    cfg = dataclasses.replace(ClientConfig(), max_keepalive_connections=20)
    assert cfg.default_fields == {"timeout", "max_connections"}
    with pytest.raises(ConfigurationError, match="max_keepalive_connections"):
        dataclasses.replace(cfg, max_connections=10)
    timed = dataclasses.replace(ClientConfig(), timeout=10.0)
    with pytest.raises(ConfigurationError, match="total_timeout"):
        dataclasses.replace(timed, total_timeout=5)
    # Untouched defaults stay defaults through any number of replaces.
    chain = dataclasses.replace(dataclasses.replace(ClientConfig(), retry_attempts=1), total_timeout=3)
    assert chain.timeout == 3 and "timeout" in chain.default_fields


def test_repr_eq_and_hash_show_plain_values() -> None:
    """repr shows numbers only; equality and hashing compare values, not where they came from."""
    cfg = ClientConfig(total_timeout=0.5, max_connections=10)
    text = repr(cfg)
    assert "timeout=0.5," in text and "max_keepalive_connections=10," in text and "Default" not in text
    explicit = ClientConfig(timeout=0.5, total_timeout=0.5, max_connections=10, max_keepalive_connections=10)
    assert cfg == explicit and hash(cfg) == hash(explicit)
    assert ClientConfig() == ClientConfig(timeout=30.0, max_connections=100, max_keepalive_connections=20)


def test_defaults_are_plain_numbers_to_everyone_else() -> None:
    """Arithmetic, JSON and isinstance treat a default as the number it is."""
    cfg = ClientConfig(total_timeout=0.5)
    assert isinstance(cfg.timeout, float) and isinstance(cfg.max_connections, int)
    assert json.dumps([cfg.timeout, cfg.max_connections]) == "[0.5, 100]"
    assert not is_default(cfg.timeout * 2) and not is_default(cfg.max_connections + 1)
    assert str(cfg.max_keepalive_connections) == "20"


@pytest.mark.parametrize("clone", [pickle.loads, copy.deepcopy], ids=["pickle", "deepcopy"])
def test_copies_keep_defaults_defaults(clone: Any) -> None:
    """A pickled or deep-copied config still knows its defaults (a replace re-adapts them)."""
    cfg = ClientConfig(total_timeout=0.5)
    copied = clone(pickle.dumps(cfg)) if clone is pickle.loads else clone(cfg)
    assert copied == cfg and copied.default_fields == cfg.default_fields
    assert dataclasses.replace(copied, total_timeout=None).timeout == 30.0
    again = ClientConfig(**dataclasses.asdict(cfg))
    assert again.default_fields == cfg.default_fields


def test_as_default_yields_to_given_values() -> None:
    """as_default(x) is a default of x: it adapts where a plain x would contradict."""
    assert ClientConfig(timeout=as_default(5.0), total_timeout=2).timeout == 2
    assert ClientConfig(timeout=as_default(5.0)).timeout == 5.0
    assert ClientConfig(max_keepalive_connections=as_default(40), max_connections=30).max_keepalive_connections == 30
    adapted = ClientConfig(timeout=as_default(5.0), total_timeout=2).timeout
    assert as_default(adapted) is adapted  # keeps its base: 5 s again without the total
    assert ClientConfig(timeout=adapted).timeout == 5.0
    assert as_default(True) is True and not is_default(as_default(True))
    assert is_default(as_default(3)) and isinstance(as_default(3), int)


@given(
    pool=st.none() | st.integers(1, 300),
    keep=st.none() | st.integers(0, 300),
    timeout=st.none() | st.floats(0.01, 100),
    total=st.none() | st.floats(0.01, 100),
)
def test_only_two_given_values_ever_contradict(
    pool: int | None, keep: int | None, timeout: float | None, total: float | None
) -> None:
    """For any mix of given and unset fields: given values are kept, the bounds hold, and an
    error comes only from two given values that contradict."""
    kwargs = {k: v for k, v in {
        "max_connections": pool, "max_keepalive_connections": keep, "timeout": timeout, "total_timeout": total,
    }.items() if v is not None}
    conflict = (pool is not None and keep is not None and keep > pool) or (
        timeout is not None and total is not None and timeout > total
    )
    if conflict:
        with pytest.raises(ConfigurationError):
            ClientConfig(**kwargs)
        return
    cfg = ClientConfig(**kwargs)
    for name, value in kwargs.items():
        assert getattr(cfg, name) == value and not is_default(getattr(cfg, name))
    assert cfg.max_keepalive_connections <= cfg.max_connections
    assert cfg.total_timeout is None or cfg.timeout <= cfg.total_timeout
    assert cfg.default_fields == ADAPTIVE_FIELDS - set(kwargs)


# -- Settings: keywords, environment, file -----------------------------------------------


def test_max_connections_alone_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_CLIENT_MAX_CONNECTIONS=10 alone works: the keep-alive default follows it."""
    monkeypatch.setenv("HTTP_CLIENT_MAX_CONNECTIONS", "10")
    s = Settings()
    assert (s.max_connections, s.max_keepalive_connections) == (10, 10)
    cfg = s.to_client_config()
    assert (cfg.max_connections, cfg.max_keepalive_connections) == (10, 10)
    assert dataclasses.replace(cfg, max_connections=64).max_keepalive_connections == 20


def test_total_timeout_alone_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_CLIENT_TOTAL_TIMEOUT=0.5 alone works: the attempt timeout default follows it."""
    monkeypatch.setenv("HTTP_CLIENT_TOTAL_TIMEOUT", "0.5")
    s = Settings()
    assert (s.timeout, s.total_timeout) == (0.5, 0.5)
    cfg = s.to_client_config()
    assert cfg.timeout == 0.5 and "timeout" in cfg.default_fields


def test_keepalive_alone_grows_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_CLIENT_MAX_KEEPALIVE_CONNECTIONS=150 alone grows the pool default to 150."""
    monkeypatch.setenv("HTTP_CLIENT_MAX_KEEPALIVE_CONNECTIONS", "150")
    s = Settings()
    assert (s.max_connections, s.to_client_config().max_connections) == (150, 150)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"HTTP_CLIENT_MAX_CONNECTIONS": "5", "HTTP_CLIENT_MAX_KEEPALIVE_CONNECTIONS": "6"},
         ("HTTP_CLIENT_MAX_KEEPALIVE_CONNECTIONS (6)", "HTTP_CLIENT_MAX_CONNECTIONS (5)")),
        ({"HTTP_CLIENT_TIMEOUT": "2", "HTTP_CLIENT_TOTAL_TIMEOUT": "0.5"},
         ("HTTP_CLIENT_TIMEOUT (2 s)", "HTTP_CLIENT_TOTAL_TIMEOUT (0.5 s)")),
    ],
)
def test_two_given_variables_that_contradict_name_both(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], names: tuple[str, str]
) -> None:
    """Explicit contradictions in the environment name both variables and their values."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError) as info:
        Settings()
    text = str(info.value)
    assert all(n in text for n in names) and "both are set" in text
    assert info.value.__cause__ is None and "pydantic" not in text.lower()


def test_a_keyword_and_a_variable_can_contradict(monkeypatch: pytest.MonkeyPatch) -> None:
    """A keyword is as explicit as a variable: timeout=10 with HTTP_CLIENT_TOTAL_TIMEOUT=5 fails."""
    monkeypatch.setenv("HTTP_CLIENT_TOTAL_TIMEOUT", "5")
    with pytest.raises(ConfigurationError, match="HTTP_CLIENT_TIMEOUT"):
        Settings(timeout=10)
    assert Settings(timeout=4).timeout == 4


def test_values_from_the_config_file_count_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A value from the TOML file is given: it adapts the defaults, and can contradict the environment."""
    path = tmp_path / "http.toml"
    path.write_text("max_connections = 8\n", encoding="utf-8")
    monkeypatch.setenv("HTTP_CLIENT_CONFIG_FILE", str(path))
    assert Settings().max_keepalive_connections == 8
    monkeypatch.setenv("HTTP_CLIENT_MAX_KEEPALIVE_CONNECTIONS", "9")
    with pytest.raises(ConfigurationError, match="HTTP_CLIENT_MAX_CONNECTIONS"):
        Settings()


# -- services ----------------------------------------------------------------------------


def test_service_total_timeout_caps_the_global_attempt_timeout() -> None:
    """A service's own total_timeout: the global attempt timeout (given or not) yields to it."""
    s = Settings(timeout=20, services={"md": {"base_url": "http://md", "total_timeout": 7}})
    cfg = s.service("md").to_client_config(s)
    assert (cfg.timeout, cfg.total_timeout) == (7, 7)
    plain = Settings(services={"md": {"base_url": "http://md", "total_timeout": 3}})
    assert plain.service("md").to_client_config(plain).timeout == 3


def test_service_pool_caps_the_global_keepalive_count() -> None:
    """A service's smaller pool caps the global keep-alive count, given or not."""
    s = Settings(max_keepalive_connections=50, services={"md": {"base_url": "http://md", "max_connections": 10}})
    cfg = s.service("md").to_client_config(s)
    assert (cfg.max_connections, cfg.max_keepalive_connections) == (10, 10)
    wide = Settings(max_keepalive_connections=5, services={"md": {"base_url": "http://md", "max_connections": 10}})
    assert wide.service("md").to_client_config(wide).max_keepalive_connections == 5


def test_service_timeout_above_the_global_total_names_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service's attempt timeout above the global deadline fails at load, naming both variables and the fix."""
    monkeypatch.setenv("HTTP_CLIENT_TOTAL_TIMEOUT", "5")
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__SLOW__BASE_URL", "http://slow")
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__SLOW__TIMEOUT", "20")
    with pytest.raises(ConfigurationError) as info:
        Settings()
    text = str(info.value)
    assert "HTTP_CLIENT_SERVICES__SLOW__TIMEOUT (20 s" in text and "HTTP_CLIENT_TOTAL_TIMEOUT (5 s" in text
    assert "HTTP_CLIENT_SERVICES__SLOW__TOTAL_TIMEOUT" in text  # the fix
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__SLOW__TOTAL_TIMEOUT", "60")
    s = Settings()
    cfg = s.service("slow").to_client_config(s)
    assert (cfg.timeout, cfg.total_timeout) == (20, 60)


def test_service_timeout_above_its_own_total_names_both() -> None:
    """Both values on the service: the error names the service's two variables."""
    with pytest.raises(ConfigurationError) as info:
        Settings(services={"md": {"base_url": "http://md", "timeout": 9, "total_timeout": 3}})
    text = str(info.value)
    assert "HTTP_CLIENT_SERVICES__MD__TIMEOUT (9 s" in text and "HTTP_CLIENT_SERVICES__MD__TOTAL_TIMEOUT (3 s" in text


def test_service_timeout_under_a_global_total_with_default_timeout() -> None:
    """Only the global total is given: the service without its own timeout gets the adapted one."""
    s = Settings(total_timeout=2, services={"md": {"base_url": "http://md"}})
    assert s.service("md").to_client_config(s).timeout == 2
    standalone = ServiceSettings(base_url="http://x", timeout=1)
    assert standalone.to_client_config(s).timeout == 1


# -- clients built on Settings -----------------------------------------------------------


def test_store_client_timeout_default_yields_to_the_total(monkeypatch: pytest.MonkeyPatch) -> None:
    """StoreClient's 5 s is a default: with HTTP_CLIENT_TOTAL_TIMEOUT=2 it becomes 2; a given one is kept."""
    monkeypatch.setenv("HTTP_CLIENT_TOTAL_TIMEOUT", "2")
    store = StoreClient("http://store", "k", metrics=False)
    assert (store.config.timeout, store.config.total_timeout) == (2, 2)
    assert StoreClient("http://store", "k", timeout=1.5, metrics=False).config.timeout == 1.5
    with pytest.raises(ConfigurationError, match="total_timeout"):
        StoreClient("http://store", "k", timeout=3, metrics=False)
    monkeypatch.delenv("HTTP_CLIENT_TOTAL_TIMEOUT")
    assert StoreClient("http://store", "k", metrics=False).config.timeout == 5.0


def test_base_client_jitter_follows_a_given_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """BaseAPIClient keeps seed 003's jitter-free 1, 2, 4 s unless HTTP_CLIENT_RETRY_JITTER is set."""
    assert BaseAPIClient("http://svc").retry.jitter == "none"
    monkeypatch.setenv("HTTP_CLIENT_RETRY_JITTER", "full")
    assert BaseAPIClient("http://svc").retry.jitter == "full"
    assert BaseAPIClient("http://svc", jitter="equal").retry.jitter == "equal"


def test_settings_rebuilt_from_model_dump_keep_their_defaults() -> None:
    """Settings(**{**old.model_dump(), field: new}) (the immutability hint) re-adapts the defaults."""
    old = Settings(max_connections=10, total_timeout=0.5)
    assert (old.max_keepalive_connections, old.timeout) == (10, 0.5)
    same = Settings(**old.model_dump())
    assert same.to_client_config() == old.to_client_config()
    assert same.model_fields_set & ADAPTIVE_FIELDS == old.model_fields_set & ADAPTIVE_FIELDS
    new = Settings(**{**old.model_dump(), "max_connections": 50, "total_timeout": None})
    assert (new.max_keepalive_connections, new.timeout) == (20, 30.0)
    assert json.loads(old.model_dump_json())["max_keepalive_connections"] == 10
