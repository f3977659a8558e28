"""Settings problems, told by environment variable: the errors and warnings of ``Settings``.

Every setting is named by the ``HTTP_CLIENT_*`` variable that sets it
(:func:`env_var_for`). A pydantic ``ValidationError`` or a pydantic-settings
``SettingsError`` becomes one :class:`~httpx_resilience.ConfigurationError`
whose message names the variable (and the field) and the closest setting for
a typo, never a raw pydantic traceback; credentials are never echoed. An
``HTTP_CLIENT_*`` variable that matches no setting is logged once as a WARNING.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError
from ..observe.redact import redact_url

if TYPE_CHECKING:  # the errors pydantic raises; this module itself needs no extra
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

__all__ = [
    "ENV_PREFIX",
    "contradiction_error",
    "env_var_for",
    "from_settings_error",
    "from_validation_error",
    "service_contradiction_error",
    "warn_unknown_env",
]

ENV_PREFIX = "HTTP_CLIENT_"

_log = logging.getLogger("httpx_resilience.settings")
_SECRET_WORDS = ("key", "token", "secret", "password")


def env_var_for(*path: object) -> str:
    """The environment variable that sets the field at ``path`` (``HTTP_CLIENT_A__B``)."""
    return ENV_PREFIX + "__".join(str(p).upper() for p in path)


def from_validation_error(
    exc: ValidationError,
    *,
    from_file: bool,
    fields: Collection[str],
    service_fields: Collection[str],
) -> ConfigurationError:
    """One :class:`ConfigurationError` for all of ``exc``'s problems.

    Args:
        exc: what pydantic raised.
        from_file: a TOML config file was named, so a value may come from it.
        fields: the names of ``Settings``' fields (for "did you mean").
        service_fields: the names of ``ServiceSettings``' fields.
    """
    problems: list[str] = []
    first_field: str | None = None
    for err in exc.errors(include_url=False):
        ctx = err.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, ConfigurationError):
            return inner  # already names the variable and the fix
        loc = tuple(str(p) for p in err["loc"])
        first_field = first_field or ".".join(loc)
        problems.append(
            _describe_error(err["type"], loc, err["msg"], err.get("input"), fields, service_fields)
        )
    text = "; ".join(problems)
    if from_file:
        text += f" (a value may come from the TOML file named by {env_var_for('config_file')})"
    return ConfigurationError(f"Invalid HTTP client settings: {text}", field=first_field)


def _describe_error(
    kind: str,
    loc: tuple[str, ...],
    msg: str,
    value: Any,
    fields: Collection[str],
    service_fields: Collection[str],
) -> str:
    name = ".".join(loc)
    where = f"{env_var_for(*loc)} ({name})" if loc else "settings"
    if kind == "extra_forbidden":
        parent = service_fields if len(loc) == 3 and loc[0] == "services" else fields
        close = difflib.get_close_matches(loc[-1], list(parent), n=1)
        maybe = f"; did you mean {close[0]!r}?" if close else ""
        return f"{where} is not a setting{maybe}"
    if kind == "missing":  # only a service's base_url is required
        return f"{where} is required: service {loc[1]!r} has settings but no {loc[-1]}"
    text = msg[0].lower() + msg[1:] if msg else "is invalid"
    text = text.removeprefix("value error, ")
    shown = "" if "got " in text else _show(loc, value)
    return f"{where}: {text}{shown}"


def _show(loc: tuple[str, ...], value: Any) -> str:
    if any(word in part.lower() for part in loc for word in _SECRET_WORDS):
        return ""  # never echo a credential
    if isinstance(value, str):
        return f" (got {redact_url(value)[:60]!r})"
    return f" (got {value!r})" if isinstance(value, (int, float)) else ""


def from_settings_error(exc: SettingsError) -> ConfigurationError:
    """A :class:`ConfigurationError` naming the variable pydantic-settings could not parse."""
    match = re.search(r'field "([^"]+)"', str(exc))
    field = match.group(1) if match else None
    var = env_var_for(field) if field else f"an {ENV_PREFIX}* variable"
    hint = (
        f" Give JSON, or set one value per variable such as "
        f"{env_var_for('services', 'name', 'base_url')}"
        if field == "services"
        else ""
    )
    return ConfigurationError(f"{var} could not be parsed: {exc}.{hint}", field=field)


#: The field each ClientConfig contradiction's field must not exceed, and the unit shown.
_BOUNDS: Mapping[str, tuple[str, str]] = {
    "max_keepalive_connections": ("max_connections", ""),
    "timeout": ("total_timeout", " s"),
}


def contradiction_error(
    exc: ConfigurationError, values: Mapping[str, Any]
) -> ConfigurationError:
    """``exc`` (two given ``ClientConfig`` fields that contradict) told by environment variable.

    Args:
        exc: what :class:`~httpx_resilience.ClientConfig` raised.
        values: the settings' field values.
    """
    field = exc.field or ""
    if field not in _BOUNDS:
        return exc
    other, unit = _BOUNDS[field]
    return ConfigurationError(
        f"{env_var_for(field)} ({values[field]:g}{unit}) must be <= {env_var_for(other)} "
        f"({values[other]:g}{unit}), and both are set: lower {env_var_for(field)} or unset "
        f"it (its default follows {env_var_for(other)})",
        field=field,
    )


def service_contradiction_error(
    exc: ConfigurationError, service: str, timeout: float | None, total: float | None,
    own_total: bool,
) -> ConfigurationError:
    """``exc``, raised for service ``service``'s client config, told by environment variable.

    Args:
        exc: what :class:`~httpx_resilience.ClientConfig` raised.
        service: the service's canonical name.
        timeout: the service's attempt timeout.
        total: the total timeout that applies to the service.
        own_total: ``total`` is the service's own, not the global one.
    """
    if exc.field != "timeout" or timeout is None or total is None:
        return ConfigurationError(
            f"Service {service!r}: {exc.message}", field=f"services.{service}.{exc.field}"
        )
    own = env_var_for("services", service, "timeout")
    service_total = env_var_for("services", service, "total_timeout")
    if own_total:
        limit, fix = service_total, f"lower {own} or raise {service_total}"
    else:
        limit = env_var_for("total_timeout")
        fix = f"lower {own}, or give the service its own deadline with {service_total}"
    return ConfigurationError(
        f"{own} ({timeout:g} s, one attempt) must be <= {limit} ({total:g} s, the whole "
        f"request), and both are set: {fix}",
        field=f"services.{service}.timeout",
    )


_WARNED: set[str] = set()  # each stray variable is reported once per process


def warn_unknown_env(environ: Mapping[str, str], fields: Collection[str]) -> None:
    """Log a WARNING for each ``HTTP_CLIENT_*`` variable that matches none of ``fields``.

    Each variable is reported once per process, with the closest setting.
    """
    names = list(fields)
    for var in environ:
        if not var.upper().startswith(ENV_PREFIX) or var in _WARNED:
            continue
        name = var[len(ENV_PREFIX) :].split("__", 1)[0].lower()
        if name in fields:
            continue
        _WARNED.add(var)
        close = difflib.get_close_matches(name, names, n=1)
        maybe = f"; did you mean {env_var_for(close[0])}?" if close else ""
        _log.warning(
            "%s matches no HTTP client setting and is ignored%s", var, maybe,
            extra={"env_var": var},
        )
