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

from ..config import ADAPTIVE_FIELDS, ClientConfig, as_default, is_default
from ..exceptions import ConfigurationError
from ..observe.redact import redact_url
from ._errors import (
    ENV_PREFIX,
    contradiction_error,
    env_var_for,
    from_settings_error,
    from_validation_error,
    service_contradiction_error,
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
        timeout: seconds for one attempt (``<=`` the total timeout that applies).
        total_timeout: seconds for a whole logical request to this service,
            retries included (the global ``total_timeout`` when unset). The
            global attempt timeout yields to it.
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
        max_connections: pool size for this service (the global keep-alive
            count is capped by it).
        verify_ssl: verify TLS certificates.
        follow_redirects: follow 3xx responses.
        headers: default headers for every request to the service.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    timeout: float | None = Field(default=None, gt=0)
    total_timeout: float | None = Field(default=None, gt=0)
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

        The service's own values win over the globals. A global value that
        bounds a service value yields to it as a default would: the global
        attempt timeout to the service's ``total_timeout``, the global
        keep-alive count to the service's ``max_connections``.

        Raises:
            ConfigurationError: the combination is contradictory (the service's
                ``timeout`` above the total timeout that applies).
        """
        kw = defaults.client_config_kwargs()
        if self.timeout is not None:
            kw["timeout"] = self.timeout
        elif self.total_timeout is not None:
            kw["timeout"] = as_default(kw["timeout"])
        if self.total_timeout is not None:
            kw["total_timeout"] = self.total_timeout
        if self.max_connections is not None:
            kw["max_connections"] = self.max_connections
            kw["max_keepalive_connections"] = as_default(kw["max_keepalive_connections"])
        for name in (
            "follow_redirects", "verify_ssl", "retry_attempts", "retry_backoff_factor",
            "retry_max_delay",
        ):
            kw[name] = _pick(getattr(self, name), kw[name])
        kw["headers"] = dict(self.headers) or None
        return ClientConfig(**kw)

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
        timeout: seconds for one attempt (``HTTP_CLIENT_TIMEOUT``); by default
            30, or ``total_timeout`` when that is shorter.
        total_timeout: seconds for a whole logical request, retries included.
        max_connections: connection pool size; by default 100, or
            ``max_keepalive_connections`` when that is larger.
        max_keepalive_connections: idle connections kept (``<= max_connections``);
            by default 20, or ``max_connections`` when that is smaller.
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

    A setting that is not given never contradicts one that is: its default
    adapts (see ``max_keepalive_connections`` and ``timeout``). Only two given
    values can contradict; the error names both variables.

    Raises:
        ConfigurationError: a value is invalid, a setting is unknown, two
            given settings contradict each other, or the config file cannot be
            read; the message names the variable.

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
        # A default read back from another Settings (model_dump) is not a given value.
        data = {k: v for k, v in data.items() if not (k in ADAPTIVE_FIELDS and is_default(v))}
        path = data.get("config_file")
        if path is not None and str(path).strip():
            data = deep_merge(read_config_file(Path(str(path)), Settings.model_fields), data)
        services = data.get("services")
        if isinstance(services, Mapping):
            data["services"] = normalize_services(services)
        return data

    @_model_validator(mode="after")
    def _check_combination(self) -> Settings:
        """Adapt the defaults to the values given; refuse two given values that contradict.

        ``HTTP_CLIENT_MAX_CONNECTIONS=10`` alone lowers the keep-alive default
        to 10 and ``HTTP_CLIENT_TOTAL_TIMEOUT=0.5`` alone the attempt timeout
        default to 0.5 s (the fields show the adapted values); each service's
        combination with the globals is checked too.
        """
        try:
            config = ClientConfig(**self.client_config_kwargs())
        except ConfigurationError as exc:
            raise contradiction_error(exc, self.__dict__) from None
        for name in ADAPTIVE_FIELDS:
            # A default stays marked (see ``as_default``), so the round trip
            # ``Settings(**{**old.model_dump(), name: new})`` keeps it a default.
            self.__dict__[name] = getattr(config, name)
        for key, service in self.services.items():
            try:
                service.to_client_config(self)
            except ConfigurationError as exc:
                own = service.total_timeout is not None
                total = service.total_timeout if own else self.total_timeout
                raise service_contradiction_error(
                    exc, key, service.timeout, total, own
                ) from None
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
        """The :class:`~httpx_resilience.ClientConfig` these settings describe.

        A setting that was not given stays a default in the result, so it
        adapts to what is given later (``dataclasses.replace(config, ...)``).
        """
        return ClientConfig(**self.client_config_kwargs())

    def client_config_kwargs(self) -> dict[str, Any]:
        """The :class:`~httpx_resilience.ClientConfig` keywords of these settings.

        The fields that adapt to others (``timeout`` and the pool sizes) are
        marked with :func:`~httpx_resilience.config.as_default` when they were
        not given (by keyword, variable or file), so they yield to given values.
        """
        given = self.model_fields_set
        kw: dict[str, Any] = {}
        for name in _CLIENT_FIELDS:
            value = getattr(self, name)
            if name in ADAPTIVE_FIELDS and name not in given:
                value = as_default(type(self).model_fields[name].default)
            kw[name] = value
        return kw


#: The fields of :class:`Settings` that are also :class:`ClientConfig` fields.
_CLIENT_FIELDS = (
    "timeout", "total_timeout", "max_connections", "max_keepalive_connections",
    "keepalive_expiry", "retry_attempts", "retry_backoff_factor", "retry_max_delay",
    "retry_jitter", "follow_redirects", "verify_ssl",
)
