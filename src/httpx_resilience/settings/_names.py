"""Service names: their canonical form (:func:`service_key`) and merging the ``services`` table.

A service name is case-insensitive and ``-`` equals ``_``, so
``"master-data"``, ``"MASTER_DATA"`` and ``HTTP_CLIENT_SERVICES__MASTER_DATA__*``
all name one service. :func:`normalize_services` rekeys the ``services``
table by canonical name, merging entries that collide key by key when both
are tables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..exceptions import ConfigurationError
from ._toml import deep_merge

__all__ = ["normalize_services", "service_key"]

_SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def service_key(name: str) -> str:
    """The canonical form of a service name: lower-case, ``-`` → ``_``.

    Raises:
        ConfigurationError: the name is empty or has characters other than
            letters, digits, ``_``, ``-`` and ``.``.
    """
    if not isinstance(name, str) or not _SERVICE_NAME.match(name):
        raise ConfigurationError(
            f"service name {name!r} is invalid: use letters, digits, '-', '_' or '.', "
            "e.g. 'master-data'",
            field="services",
        )
    return name.lower().replace("-", "_")


def normalize_services(services: Mapping[Any, Any]) -> dict[str, Any]:
    """``services`` keyed by :func:`service_key`; two tables for one service are merged.

    Raises:
        ConfigurationError: a name is invalid, or one service is configured
            twice and the two values are not both tables.
    """
    out: dict[str, Any] = {}
    for name, value in services.items():
        key = service_key(str(name))
        if key in out:
            if isinstance(out[key], Mapping) and isinstance(value, Mapping):
                out[key] = deep_merge(out[key], value)
                continue
            raise ConfigurationError(
                f"Service {name!r} is configured twice (as {key!r}); names are "
                "case-insensitive and '-' equals '_'",
                field="services",
            )
        out[key] = value
    return out
