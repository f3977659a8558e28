"""The TOML config file of :class:`~httpx_resilience.Settings` (``HTTP_CLIENT_CONFIG_FILE``).

The file may set any field at the top level and a ``[services.<name>]`` table
per service; it is read with ``tomllib`` (Python 3.11+) or ``tomli`` (3.10)
and merged under the keyword arguments and the environment, nested tables key
by key (:func:`deep_merge`). Every problem (unreadable file, invalid TOML, an
unknown key) raises :class:`~httpx_resilience.ConfigurationError` naming
``HTTP_CLIENT_CONFIG_FILE``.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError
from ._errors import env_var_for

__all__ = ["deep_merge", "read_config_file", "toml_loads"]


def toml_loads() -> Callable[[str], dict[str, Any]]:
    """``tomllib.loads`` (Python 3.11+) or ``tomli.loads`` (3.10)."""
    for module_name in ("tomllib", "tomli"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        loads: Callable[[str], dict[str, Any]] = module.loads
        return loads
    raise ConfigurationError(
        f"Reading {env_var_for('config_file')} needs Python 3.11+ (tomllib) or the tomli "
        "package on Python 3.10, which the settings extra installs: "
        "pip install 'httpx-resilience[settings]' (or pip install tomli)",
        field="config_file",
    )


def read_config_file(path: Path, fields: Collection[str]) -> dict[str, Any]:
    """The settings in the TOML file at ``path``.

    Args:
        path: the file named by ``HTTP_CLIENT_CONFIG_FILE``.
        fields: the names of ``Settings``' fields; the file may set any but
            ``config_file``.

    Raises:
        ConfigurationError: the file cannot be read, is not valid TOML, sets an
            unknown key, or its ``services`` is not one table per service.
    """
    where = f"{env_var_for('config_file')}={str(path)!r}"
    loads = toml_loads()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read the config file {where}: {exc.strerror or exc}; point it at a "
            "readable TOML file or unset it",
            field="config_file",
        ) from None
    try:
        data = loads(text)
    except ValueError as exc:  # TOMLDecodeError is a ValueError; its text has line/column
        raise ConfigurationError(
            f"The config file {where} is not valid TOML: {exc}", field="config_file"
        ) from None
    for key in data:
        if key not in fields or key == "config_file":
            close = difflib.get_close_matches(key, list(fields), n=1)
            maybe = f"; did you mean {close[0]!r}?" if close and close[0] != key else ""
            raise ConfigurationError(
                f"The config file {where} cannot set {key!r}{maybe}", field=key
            )
    services = data.get("services", {})
    if not isinstance(services, dict) or not all(isinstance(v, dict) for v in services.values()):
        raise ConfigurationError(
            f"The config file {where}: 'services' must hold one [services.<name>] table per "
            "service, e.g. [services.master-data] with base_url = \"https://...\"",
            field="services",
        )
    return data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, merging nested mappings key by key."""
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(old, value)
        else:
            merged[key] = value
    return merged
