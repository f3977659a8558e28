"""The settings models: :class:`Settings` (defaults) and :class:`ServiceSettings` (one service).

The two are one concept and refer to each other (``Settings.services`` holds
``ServiceSettings``; a service's fields fall back to its ``Settings``), so they
share this module. Reading the TOML file is :mod:`._toml`'s job, service names
:mod:`._names`' and turning pydantic's errors into ``ConfigurationError``
:mod:`._errors`'.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic import model_validator as _model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from ..config import ClientConfig
from ..exceptions import ConfigurationError
from ..observe.redact import redact_url
from ._errors import (
    ENV_PREFIX,
    env_var_for,
    from_settings_error,
    from_validation_error,
    warn_unknown_env,
)
from ._names import normalize_services, service_key
from ._toml import deep_merge, read_config_file

__all__ = ["ServiceSettings", "Settings"]

_HOST = re.compile(r"[A-Za-z0-9._:-]+")  # a name, IPv4 or IPv6 (httpx drops the brackets)


class ServiceSettings(BaseModel):
    """One named service; unset fields fall back to the global :class:`Settings`.

    Args:
        base_url: the service's root URL (``http://`` or ``https://`` with a host).
        timeout: seconds for one attempt.
        api_key: sent as the ``api_key_header`` header.
        api_key_header: the API key's header name.
        bearer_token: sent as ``Authorization: Bearer <token>``.
        jwt_secret: signs short-lived service JWTs (``JWTAuth``, needs PyJWT);
            with an ``api_key`` too, the key is the fallback when signing fails.
        jwt_algorithm: the JWT algorithm (``HS256`` …).
        jwt_issuer: the ``iss`` claim.
        jwt_audience: the ``aud`` claim.
        jwt_subject: the ``sub`` claim.
        retry_attempts: retries after the first attempt.
        retry_backoff_factor: the first backoff delay, in seconds.
        retry_max_delay: cap on one delay, in seconds.
        breaker_threshold: consecutive failures that open the service's breaker.
        breaker_cooldown: seconds before the open breaker lets a probe through.
        max_connections: pool size for this service.
        verify_ssl: verify TLS certificates.
        follow_redirects: follow 3xx responses.
        headers: default headers for every request to the service.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    timeout: float | None = Field(default=None, gt=0)
    api_key: SecretStr | None = None
    api_key_header: str = Field(default="X-API-KEY", min_length=1)
    bearer_token: SecretStr | None = None
    jwt_secret: SecretStr | None = None
    jwt_algorithm: str = "HS256"
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_subject: str | None = None
    retry_attempts: int | None = Field(default=None, ge=0, le=100)
    retry_backoff_factor: float | None = Field(default=None, ge=0)
    retry_max_delay: float | None = Field(default=None, ge=0)
    breaker_threshold: int | None = Field(default=None, ge=1)
    breaker_cooldown: float | None = Field(default=None, gt=0)
    max_connections: int | None = Field(default=None, ge=1)
    verify_ssl: bool | None = None
    follow_redirects: bool | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    def __setattr__(self, name: str, value: Any) -> None:
        raise _frozen(type(self).__name__, name)

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        url = value.strip()
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            parsed = httpx.URL("invalid:")
        if parsed.scheme not in ("http", "https") or not _HOST.fullmatch(parsed.host):
            raise ValueError(
                f"needs an http:// or https:// URL with a host, e.g. "
                f"'https://api.example.com', got {redact_url(url)!r}"
            )
        return url.rstrip("/")

    def to_client_config(self, defaults: Settings) -> ClientConfig:
        """The :class:`~httpx_resilience.ClientConfig` for this service over ``defaults``.

        Raises:
            ConfigurationError: the combination is contradictory.
        """
        base = defaults.to_client_config()
        max_conn = self.max_connections or base.max_connections
        return ClientConfig(
            timeout=self.timeout if self.timeout is not None else base.timeout,
            total_timeout=base.total_timeout,
            max_connections=max_conn,
            max_keepalive_connections=min(base.max_keepalive_connections, max_conn),
            keepalive_expiry=base.keepalive_expiry,
            follow_redirects=_pick(self.follow_redirects, base.follow_redirects),
            verify_ssl=_pick(self.verify_ssl, base.verify_ssl),
            retry_attempts=_pick(self.retry_attempts, base.retry_attempts),
            retry_backoff_factor=_pick(self.retry_backoff_factor, base.retry_backoff_factor),
            retry_max_delay=_pick(self.retry_max_delay, base.retry_max_delay),
            retry_jitter=base.retry_jitter,
            headers=dict(self.headers) or None,
        )

    def breaker_settings(self, defaults: Settings) -> tuple[int, float]:
        """``(failure_threshold, recovery_timeout)`` for the service's circuit breaker."""
        return (
            _pick(self.breaker_threshold, defaults.circuit_breaker_threshold),
            _pick(self.breaker_cooldown, float(defaults.circuit_breaker_cooldown)),
        )

    def build_auth(self) -> httpx.Auth | None:
        """The auth handler these settings describe, or ``None``.

        A JWT secret (or else a bearer token) is the primary credential; an
        API key alone is used as is, and beside a primary it is the fallback
        (seed 004's "JWT with API-key fallback").

        Raises:
            ConfigurationError: a credential is malformed, or PyJWT is missing
                for ``jwt_secret``.
        """
        from ..auth import APIKeyAuth, BearerAuth, FallbackAuth, JWTAuth
        from ..auth.base import AuthHandler

        key: AuthHandler | None = None
        if self.api_key is not None:
            key = APIKeyAuth(self.api_key, name=self.api_key_header)
        primary: AuthHandler | None = None
        if self.jwt_secret is not None:
            primary = JWTAuth(
                self.jwt_secret,
                self.jwt_algorithm,
                issuer=self.jwt_issuer,
                audience=self.jwt_audience,
                subject=self.jwt_subject,
            )
        elif self.bearer_token is not None:
            primary = BearerAuth(self.bearer_token)
        if primary is not None and key is not None:
            return FallbackAuth(primary, key)
        return primary or key


def _frozen(cls_name: str, name: str) -> ConfigurationError:
    return ConfigurationError(
        f"{cls_name} is immutable: build a new one instead, e.g. "
        f"{cls_name}(**{{**old.model_dump(), {name!r}: new_value}})",
        field=name,
    )


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value


class Settings(BaseSettings):
    """Client defaults and named services, from ``HTTP_CLIENT_*`` variables.

    Args:
        timeout: seconds for one attempt (``HTTP_CLIENT_TIMEOUT``).
        total_timeout: seconds for a whole logical request, retries included.
        max_connections: connection pool size.
        max_keepalive_connections: idle connections kept (``<= max_connections``).
        keepalive_expiry: seconds an idle connection is kept.
        retry_attempts: retries after the first attempt.
        retry_backoff_factor: the first backoff delay, in seconds.
        retry_max_delay: cap on one delay, in seconds.
        retry_jitter: ``"full"``, ``"equal"``, ``"decorrelated"`` or ``"none"``.
        follow_redirects: follow 3xx responses.
        verify_ssl: verify TLS certificates.
        circuit_breaker_threshold: consecutive failures that open a breaker (≥ 1).
        circuit_breaker_cooldown: seconds before an open breaker admits a probe (≥ 1).
        config_file: a TOML file with more settings and ``[services.<name>]``
            tables (``HTTP_CLIENT_CONFIG_FILE``).
        services: named services (``HTTP_CLIENT_SERVICES__<NAME>__BASE_URL`` …).

    Raises:
        ConfigurationError: a value is invalid, a setting is unknown, or the
            config file cannot be read; the message names the variable.

    An ``HTTP_CLIENT_*`` variable that matches no setting is logged as a
    WARNING (with the closest setting), since it is most likely a typo.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_ignore_empty=True,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    timeout: float = Field(default=30.0, gt=0)
    total_timeout: float | None = Field(default=None, gt=0)
    max_connections: int = Field(default=100, ge=1)
    max_keepalive_connections: int = Field(default=20, ge=0)
    keepalive_expiry: float = Field(default=5.0, ge=0)
    retry_attempts: int = Field(default=3, ge=0, le=100)
    retry_backoff_factor: float = Field(default=1.0, ge=0)
    retry_max_delay: float = Field(default=60.0, ge=0)
    retry_jitter: Literal["full", "equal", "decorrelated", "none"] = "full"
    follow_redirects: bool = False
    verify_ssl: bool = True
    circuit_breaker_threshold: int = Field(default=5, ge=1, description="Failures before open")
    circuit_breaker_cooldown: int = Field(default=30, ge=1, description="Seconds before probe")
    config_file: Path | None = None
    services: dict[str, ServiceSettings] = Field(default_factory=dict)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            from_file = values.get("config_file") or os.environ.get(env_var_for("config_file"))
            raise from_validation_error(
                exc,
                from_file=bool(from_file),
                fields=Settings.model_fields,
                service_fields=ServiceSettings.model_fields,
            ) from None
        except SettingsError as exc:
            raise from_settings_error(exc) from None
        warn_unknown_env(os.environ, Settings.model_fields)

    def __setattr__(self, name: str, value: Any) -> None:
        raise _frozen(type(self).__name__, name)

    @_model_validator(mode="before")
    @classmethod
    def _merge_file_and_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        path = data.get("config_file")
        if path is not None and str(path).strip():
            data = deep_merge(read_config_file(Path(str(path)), Settings.model_fields), data)
        services = data.get("services")
        if isinstance(services, Mapping):
            data["services"] = normalize_services(services)
        return data

    @_model_validator(mode="after")
    def _check_combination(self) -> Settings:
        if self.max_keepalive_connections > self.max_connections:
            raise ConfigurationError(
                f"{env_var_for('max_keepalive_connections')} "
                f"({self.max_keepalive_connections}) must be <= "
                f"{env_var_for('max_connections')} ({self.max_connections})",
                field="max_keepalive_connections",
            )
        return self

    @property
    def service_names(self) -> list[str]:
        """The configured service names (canonical form), sorted."""
        return sorted(self.services)

    def service(self, name: str) -> ServiceSettings:
        """The settings of service ``name`` (case-insensitive; ``-`` equals ``_``).

        Raises:
            ConfigurationError: no such service; the message lists the
                configured ones and the variable to set.
        """
        key = service_key(name)
        found = self.services.get(key)
        if found is not None:
            return found
        known = ", ".join(self.service_names) or "none"
        close = difflib.get_close_matches(key, self.service_names, n=1)
        maybe = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigurationError(
            f"Unknown service {name!r} (configured: {known}).{maybe} Set "
            f"{env_var_for('services', key, 'base_url')}=https://... or add a "
            f"[services.{key}] table to the TOML file named by {env_var_for('config_file')}",
            field="services",
        )

    def to_client_config(self) -> ClientConfig:
        """The :class:`~httpx_resilience.ClientConfig` these settings describe."""
        return ClientConfig(
            timeout=self.timeout,
            total_timeout=self.total_timeout,
            max_connections=self.max_connections,
            max_keepalive_connections=self.max_keepalive_connections,
            keepalive_expiry=self.keepalive_expiry,
            follow_redirects=self.follow_redirects,
            verify_ssl=self.verify_ssl,
            retry_attempts=self.retry_attempts,
            retry_backoff_factor=self.retry_backoff_factor,
            retry_max_delay=self.retry_max_delay,
            retry_jitter=self.retry_jitter,
        )
