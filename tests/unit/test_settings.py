"""Settings: HTTP_CLIENT_* variables, named services, the TOML file, and errors that name the variable."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest
from pydantic import SecretStr, ValidationError

from httpx_resilience.auth import APIKeyAuth, BearerAuth, FallbackAuth, JWTAuth
from httpx_resilience.config import ClientConfig
from httpx_resilience.exceptions import ConfigurationError
from httpx_resilience.settings import ServiceSettings, Settings, env_var_for, service_key


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without HTTP_CLIENT_* variables."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("HTTP_CLIENT_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "http.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- defaults and the environment ------------------------------------------------------


def test_defaults_match_the_seeds() -> None:
    """Without variables: 30 s, 100 connections, 3 retries, breaker 5 failures / 30 s."""
    s = Settings()
    assert (s.timeout, s.max_connections, s.max_keepalive_connections) == (30.0, 100, 20)
    assert (s.retry_attempts, s.retry_backoff_factor, s.retry_max_delay) == (3, 1.0, 60.0)
    assert (s.circuit_breaker_threshold, s.circuit_breaker_cooldown) == (5, 30)
    assert s.follow_redirects is False and s.verify_ssl is True and s.services == {}


def test_environment_variables_are_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_CLIENT_TIMEOUT, _MAX_CONNECTIONS, _RETRY_ATTEMPTS … set the matching fields."""
    monkeypatch.setenv("HTTP_CLIENT_TIMEOUT", "10")
    monkeypatch.setenv("HTTP_CLIENT_MAX_CONNECTIONS", "7")
    monkeypatch.setenv("HTTP_CLIENT_MAX_KEEPALIVE_CONNECTIONS", "5")
    monkeypatch.setenv("HTTP_CLIENT_RETRY_ATTEMPTS", "1")
    monkeypatch.setenv("HTTP_CLIENT_VERIFY_SSL", "false")
    monkeypatch.setenv("HTTP_CLIENT_CIRCUIT_BREAKER_THRESHOLD", "2")
    s = Settings()
    assert (s.timeout, s.max_connections, s.max_keepalive_connections) == (10.0, 7, 5)
    assert s.retry_attempts == 1 and s.verify_ssl is False and s.circuit_breaker_threshold == 2


def test_keyword_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit argument overrides the variable."""
    monkeypatch.setenv("HTTP_CLIENT_TIMEOUT", "10")
    assert Settings(timeout=3).timeout == 3


def test_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_CLIENT_TIMEOUT='' keeps the default instead of failing."""
    monkeypatch.setenv("HTTP_CLIENT_TIMEOUT", "")
    assert Settings().timeout == 30.0


def test_to_client_config_maps_every_field() -> None:
    """to_client_config() gives the ClientConfig with the same values."""
    s = Settings(
        timeout=4, total_timeout=20, max_connections=9, max_keepalive_connections=3,
        keepalive_expiry=7, retry_attempts=2, retry_backoff_factor=0.5, retry_max_delay=9,
        retry_jitter="none", follow_redirects=True, verify_ssl=False,
    )
    c = s.to_client_config()
    assert isinstance(c, ClientConfig)
    assert (c.timeout, c.total_timeout, c.max_connections, c.max_keepalive_connections) == (
        4, 20, 9, 3,
    )
    assert (c.keepalive_expiry, c.retry_attempts, c.retry_backoff_factor, c.retry_max_delay) == (
        7, 2, 0.5, 9,
    )
    assert c.retry_jitter == "none" and c.follow_redirects is True and c.verify_ssl is False


def test_settings_are_immutable() -> None:
    """Assigning a field raises ConfigurationError with the way to build a new one."""
    s = Settings()
    with pytest.raises(ConfigurationError, match="immutable") as info:
        s.timeout = 5  # type: ignore[misc]
    assert info.value.field == "timeout"


# -- validation errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "value", "field"),
    [
        ("HTTP_CLIENT_CIRCUIT_BREAKER_THRESHOLD", "0", "circuit_breaker_threshold"),
        ("HTTP_CLIENT_CIRCUIT_BREAKER_COOLDOWN", "-1", "circuit_breaker_cooldown"),
        ("HTTP_CLIENT_TIMEOUT", "0", "timeout"),
        ("HTTP_CLIENT_TIMEOUT", "abc", "timeout"),
        ("HTTP_CLIENT_MAX_CONNECTIONS", "0", "max_connections"),
        ("HTTP_CLIENT_RETRY_ATTEMPTS", "-2", "retry_attempts"),
        ("HTTP_CLIENT_RETRY_JITTER", "sometimes", "retry_jitter"),
    ],
)
def test_bad_variable_names_the_variable_and_the_value(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, field: str
) -> None:
    """A bad value raises ConfigurationError (a ValueError) naming the variable, field and value."""
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigurationError) as info:
        Settings()
    err = info.value
    assert isinstance(err, ValueError) and not isinstance(err, ValidationError)
    assert var in str(err) and field in str(err) and value in str(err)
    assert err.field == field


def test_no_pydantic_traceback_is_chained() -> None:
    """The pydantic error is not shown as the cause (kept only as the suppressed context)."""
    with pytest.raises(ConfigurationError) as info:
        Settings(circuit_breaker_threshold=0)
    assert info.value.__cause__ is None and info.value.__suppress_context__ is True


def test_several_problems_are_reported_together() -> None:
    """Every invalid field is listed in one message."""
    with pytest.raises(ConfigurationError) as info:
        Settings(timeout=-1, circuit_breaker_cooldown=0)
    assert "HTTP_CLIENT_TIMEOUT" in str(info.value)
    assert "HTTP_CLIENT_CIRCUIT_BREAKER_COOLDOWN" in str(info.value)


def test_unknown_keyword_suggests_the_closest_setting() -> None:
    """Settings(timout=5) fails with "did you mean 'timeout'"."""
    with pytest.raises(ConfigurationError, match="did you mean 'timeout'"):
        Settings(timout=5)


def test_keepalive_above_pool_size_is_a_contradiction() -> None:
    """max_keepalive_connections > max_connections names both variables."""
    with pytest.raises(ConfigurationError) as info:
        Settings(max_connections=5, max_keepalive_connections=6)
    text = str(info.value)
    assert "HTTP_CLIENT_MAX_KEEPALIVE_CONNECTIONS" in text and "HTTP_CLIENT_MAX_CONNECTIONS" in text


def test_unknown_prefixed_variable_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A misspelt HTTP_CLIENT_ variable is logged once, with the closest setting."""
    monkeypatch.setenv("HTTP_CLIENT_TIMOUT", "5")
    with caplog.at_level(logging.WARNING, logger="httpx_resilience.settings"):
        s = Settings()
        Settings()
    assert s.timeout == 30.0
    warned = [r for r in caplog.records if "HTTP_CLIENT_TIMEOUT" in r.getMessage()]
    assert len(warned) == 1  # once per process, not per Settings()


# -- named services --------------------------------------------------------------------


def test_services_from_nested_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_CLIENT_SERVICES__<NAME>__<FIELD> builds a ServiceSettings; API keys are SecretStr."""
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__MASTER_DATA__BASE_URL", "https://md.internal/")
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__MASTER_DATA__TIMEOUT", "5")
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__MASTER_DATA__API_KEY", "sk-very-secret")
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__MASTER_DATA__RETRY_ATTEMPTS", "1")
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__MASTER_DATA__BREAKER_THRESHOLD", "2")
    s = Settings()
    md = s.service("master-data")
    assert md.base_url == "https://md.internal"
    assert md.timeout == 5 and md.retry_attempts == 1 and md.breaker_threshold == 2
    assert isinstance(md.api_key, SecretStr) and md.api_key.get_secret_value() == "sk-very-secret"
    assert "sk-very-secret" not in repr(s) and "sk-very-secret" not in str(md)


def test_services_as_json_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_CLIENT_SERVICES may also hold JSON."""
    monkeypatch.setenv("HTTP_CLIENT_SERVICES", '{"billing": {"base_url": "http://b:8080"}}')
    assert Settings().service("billing").base_url == "http://b:8080"


def test_malformed_services_json_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unparseable HTTP_CLIENT_SERVICES raises ConfigurationError naming it and the per-field form."""
    monkeypatch.setenv("HTTP_CLIENT_SERVICES", "not json")
    with pytest.raises(ConfigurationError, match="HTTP_CLIENT_SERVICES") as info:
        Settings()
    assert "HTTP_CLIENT_SERVICES__NAME__BASE_URL" in str(info.value)


def test_service_names_are_case_and_dash_insensitive() -> None:
    """'Master-Data', 'master_data' and 'MASTER-DATA' are the same service."""
    s = Settings(services={"Master-Data": {"base_url": "http://md"}})
    assert s.service_names == ["master_data"]
    assert s.service("master_data") is s.service("MASTER-DATA")
    assert service_key("Master-Data") == "master_data"


def test_unknown_service_lists_configured_ones_and_the_variable() -> None:
    """An unknown name lists the configured services, suggests the closest, names the variable."""
    s = Settings(services={"master-data": {"base_url": "http://md"}, "billing": {"base_url": "http://b"}})
    with pytest.raises(ConfigurationError) as info:
        s.service("master-dta")
    text = str(info.value)
    assert "billing, master_data" in text and "Did you mean 'master_data'" in text
    assert "HTTP_CLIENT_SERVICES__MASTER_DTA__BASE_URL" in text and "HTTP_CLIENT_CONFIG_FILE" in text


def test_unknown_service_with_none_configured() -> None:
    """With no services at all, the message says so."""
    with pytest.raises(ConfigurationError, match=r"configured: none"):
        Settings().service("x")


def test_invalid_service_name_is_rejected() -> None:
    """A name with spaces or symbols cannot be a variable segment."""
    with pytest.raises(ConfigurationError, match="service name"):
        Settings().service("bad name!")


def test_service_without_base_url_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service with settings but no base_url says which variable is missing."""
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__BILLING__TIMEOUT", "3")
    with pytest.raises(ConfigurationError, match=r"HTTP_CLIENT_SERVICES__BILLING__BASE_URL \(services.billing.base_url\) is required"):
        Settings()


def test_service_field_typo_suggests_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_CLIENT_SERVICES__X__TIMOUT fails and suggests 'timeout'."""
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__X__BASE_URL", "http://x")
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__X__TIMOUT", "3")
    with pytest.raises(ConfigurationError, match=r"HTTP_CLIENT_SERVICES__X__TIMOUT.*did you mean 'timeout'"):
        Settings()


def test_bad_service_url_is_rejected_with_credentials_redacted() -> None:
    """A non-http URL is refused; user-info in it is never echoed."""
    with pytest.raises(ConfigurationError) as info:
        Settings(services={"x": {"base_url": "ftp://user:hunter2@host"}})
    text = str(info.value)
    assert "HTTP_CLIENT_SERVICES__X__BASE_URL" in text and "http:// or https://" in text
    assert "hunter2" not in text


def test_invalid_secret_value_is_never_echoed() -> None:
    """An invalid credential's value does not appear in the error."""
    with pytest.raises(ConfigurationError) as info:
        Settings(services={"x": {"base_url": "http://x", "bearer_token": 987654321}})
    assert "HTTP_CLIENT_SERVICES__X__BEARER_TOKEN" in str(info.value)
    assert "987654321" not in str(info.value)


def test_duplicate_service_spellings_merge_or_conflict() -> None:
    """Two spellings of one name merge as tables; a model and a table under one name conflict."""
    s = Settings(services={"a-b": {"base_url": "http://ab"}, "A_B": {"timeout": 2}})
    assert s.service("a-b").timeout == 2
    with pytest.raises(ConfigurationError, match="configured twice"):
        Settings(services={"a-b": ServiceSettings(base_url="http://x"), "a_b": {"timeout": 2}})


def test_service_config_overrides_the_defaults() -> None:
    """A service's timeout, retries and pool override the globals; keep-alive is clamped to the pool."""
    s = Settings(timeout=30, retry_attempts=3)
    md = ServiceSettings(
        base_url="http://md", timeout=2, retry_attempts=0, max_connections=4,
        verify_ssl=False, headers={"X-Tenant": "t1"},
    )
    c = md.to_client_config(s)
    assert (c.timeout, c.retry_attempts, c.max_connections, c.max_keepalive_connections) == (2, 0, 4, 4)
    assert c.verify_ssl is False and dict(c.headers or {}) == {"X-Tenant": "t1"}
    plain = ServiceSettings(base_url="http://p").to_client_config(s)
    assert (plain.timeout, plain.retry_attempts, plain.headers) == (30, 3, None)


def test_breaker_settings_fall_back_to_globals() -> None:
    """A service without breaker fields uses circuit_breaker_threshold/cooldown."""
    s = Settings(circuit_breaker_threshold=4, circuit_breaker_cooldown=9)
    assert ServiceSettings(base_url="http://x").breaker_settings(s) == (4, 9.0)
    own = ServiceSettings(base_url="http://x", breaker_threshold=2, breaker_cooldown=1.5)
    assert own.breaker_settings(s) == (2, 1.5)


def test_service_settings_are_immutable() -> None:
    """A ServiceSettings cannot be changed in place either."""
    with pytest.raises(ConfigurationError, match="immutable"):
        ServiceSettings(base_url="http://x").timeout = 3  # type: ignore[misc]


def test_build_auth_from_credentials() -> None:
    """api_key → APIKeyAuth, bearer_token → BearerAuth, JWT + key → FallbackAuth, none → None."""
    assert ServiceSettings(base_url="http://x").build_auth() is None
    key = ServiceSettings(base_url="http://x", api_key="k", api_key_header="X-Key").build_auth()
    assert isinstance(key, APIKeyAuth) and key.name == "X-Key"
    assert isinstance(ServiceSettings(base_url="http://x", bearer_token="t").build_auth(), BearerAuth)
    both = ServiceSettings(base_url="http://x", jwt_secret="s" * 32, api_key="k").build_auth()
    assert isinstance(both, FallbackAuth)
    assert isinstance(both.primary, JWTAuth) and isinstance(both.fallback, APIKeyAuth)


def test_env_var_for_builds_nested_names() -> None:
    """env_var_for joins the path with '__' after the prefix, upper-cased."""
    assert env_var_for("services", "md", "base_url") == "HTTP_CLIENT_SERVICES__MD__BASE_URL"


# -- the TOML file ---------------------------------------------------------------------


def test_toml_file_supplies_services_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_CLIENT_CONFIG_FILE loads top-level settings and [services.<name>] tables."""
    path = write(
        tmp_path,
        'timeout = 12\n[services.master-data]\nbase_url = "http://md:8000"\nretry_attempts = 1\n',
    )
    monkeypatch.setenv("HTTP_CLIENT_CONFIG_FILE", str(path))
    s = Settings()
    assert s.timeout == 12 and s.config_file == path
    assert s.service("master-data").base_url == "http://md:8000"
    assert s.service("master_data").retry_attempts == 1


def test_environment_wins_over_the_file_and_merges_service_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Variables override file values; a service's URL from the file and its key from env merge."""
    path = write(tmp_path, 'timeout = 12\n[services.master-data]\nbase_url = "http://md"\n')
    monkeypatch.setenv("HTTP_CLIENT_CONFIG_FILE", str(path))
    monkeypatch.setenv("HTTP_CLIENT_TIMEOUT", "3")
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__MASTER_DATA__API_KEY", "from-env")
    s = Settings()
    md = s.service("master-data")
    assert s.timeout == 3 and md.base_url == "http://md"
    assert md.api_key is not None and md.api_key.get_secret_value() == "from-env"


def test_config_file_as_keyword(tmp_path: Path) -> None:
    """config_file= works like the variable."""
    path = write(tmp_path, '[services.billing]\nbase_url = "https://billing"\n')
    assert Settings(config_file=path).service_names == ["billing"]


def test_missing_config_file_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that cannot be read is a ConfigurationError naming HTTP_CLIENT_CONFIG_FILE and the path."""
    monkeypatch.setenv("HTTP_CLIENT_CONFIG_FILE", "/nonexistent/http.toml")
    with pytest.raises(ConfigurationError, match=re.escape("HTTP_CLIENT_CONFIG_FILE='/nonexistent/http.toml'")):
        Settings()


def test_invalid_toml_reports_the_position(tmp_path: Path) -> None:
    """A syntax error names the file and the line."""
    path = write(tmp_path, "timeout = \n")
    with pytest.raises(ConfigurationError, match=r"not valid TOML.*line 1"):
        Settings(config_file=path)


def test_unknown_key_in_file_suggests_the_setting(tmp_path: Path) -> None:
    """A misspelt top-level key in the file is refused with a suggestion."""
    path = write(tmp_path, "retry_atempts = 2\n")
    with pytest.raises(ConfigurationError, match="did you mean 'retry_attempts'"):
        Settings(config_file=path)


def test_services_must_be_tables(tmp_path: Path) -> None:
    """services = "x" (not tables) is refused with the expected shape."""
    path = write(tmp_path, 'services = "x"\n')
    with pytest.raises(ConfigurationError, match=r"\[services.<name>\]"):
        Settings(config_file=path)


def test_file_cannot_name_another_file(tmp_path: Path) -> None:
    """config_file inside the file is refused (no include chains)."""
    path = write(tmp_path, 'config_file = "other.toml"\n')
    with pytest.raises(ConfigurationError, match="cannot set 'config_file'"):
        Settings(config_file=path)


def test_invalid_value_in_file_mentions_the_file(tmp_path: Path) -> None:
    """A bad value that may come from the file says so besides naming the variable."""
    path = write(tmp_path, "timeout = -1\n")
    with pytest.raises(ConfigurationError) as info:
        Settings(config_file=path)
    assert "HTTP_CLIENT_TIMEOUT" in str(info.value) and "TOML file" in str(info.value)


def test_without_a_toml_parser_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Python 3.10 without tomli, reading the file fails naming the settings extra."""
    path = write(tmp_path, "timeout = 2\n")
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'httpx-resilience\[settings\]'"):
        Settings(config_file=path)


@pytest.mark.parametrize(
    "url", ["http://[bad", "http://exa mple.com", "http://:80", "http://\x00x", "localhost:8080"]
)
def test_malformed_service_urls_are_refused(url: str) -> None:
    """A URL without a usable host (spaces, brackets, control characters, no scheme) is refused."""
    with pytest.raises(ConfigurationError, match="HTTP_CLIENT_SERVICES__X__BASE_URL"):
        Settings(services={"x": {"base_url": url}})


@pytest.mark.parametrize("url", ["http://[::1]:8080", "https://a.b-c.d:9/api", "http://10.0.0.1"])
def test_usable_service_urls_are_kept(url: str) -> None:
    """IPv6, ports, paths and IPv4 addresses are accepted (a trailing slash is dropped)."""
    assert Settings(services={"x": {"base_url": url + "/"}}).service("x").base_url == url


def test_non_scalar_values_are_not_echoed() -> None:
    """A list where a number belongs is reported without dumping the value."""
    with pytest.raises(ConfigurationError) as info:
        Settings(timeout=[1, 2])
    assert "HTTP_CLIENT_TIMEOUT" in str(info.value) and "got" not in str(info.value)


def test_model_validate_accepts_mappings_only() -> None:
    """pydantic's model_validate works on a mapping and refuses other input with a ValueError."""
    assert Settings.model_validate({"timeout": 3}).timeout == 3
    with pytest.raises(ValueError):
        Settings.model_validate(["timeout", 3])


def test_service_total_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_CLIENT_SERVICES__<NAME>__TOTAL_TIMEOUT is the service's deadline; a bad one names the variable."""
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__MD__BASE_URL", "http://md")
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__MD__TOTAL_TIMEOUT", "12")
    s = Settings()
    assert s.service("md").total_timeout == 12 and s.service("md").to_client_config(s).total_timeout == 12
    assert s.to_client_config().total_timeout is None  # the global one is untouched
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__MD__TOTAL_TIMEOUT", "0")
    with pytest.raises(ConfigurationError, match="HTTP_CLIENT_SERVICES__MD__TOTAL_TIMEOUT"):
        Settings()


def test_every_given_setting_stays_given_in_the_client_config() -> None:
    """Settings given explicitly give a ClientConfig without defaults; unset ones stay defaults."""
    given = Settings(timeout=4, max_connections=9, max_keepalive_connections=3).to_client_config()
    assert given.default_fields == frozenset()
    assert Settings().to_client_config().default_fields == {"timeout", "max_connections", "max_keepalive_connections"}


def test_a_missing_settings_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pydantic-settings the models' import says what to install; any other
    ImportError (a bug, not a missing extra) is left as it is."""
    from httpx_resilience import settings as package

    def missing(module: str) -> Callable[..., NoReturn]:
        def fail(name: str, anchor: str | None = None) -> NoReturn:
            raise ModuleNotFoundError(f"No module named {module!r}", name=module)

        return fail

    monkeypatch.setattr(package.importlib, "import_module", missing("pydantic_settings"))
    with pytest.raises(ImportError, match=r"pip install 'httpx-resilience\[settings\]'") as info:
        package._load_models()
    assert info.value.name == "pydantic_settings"
    monkeypatch.setattr(package.importlib, "import_module", missing("somewhere_else"))
    with pytest.raises(ModuleNotFoundError, match="somewhere_else") as other:
        package._load_models()
    assert "httpx-resilience[settings]" not in str(other.value)


def test_the_settings_package_lists_its_lazy_names() -> None:
    """Settings and ServiceSettings are in dir() and __all__, and unknown names raise AttributeError."""
    from httpx_resilience import settings as package

    assert {"Settings", "ServiceSettings", "service_key"} <= set(dir(package))
    assert package.Settings is Settings and package.ServiceSettings is ServiceSettings
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        package.Nope  # noqa: B018
