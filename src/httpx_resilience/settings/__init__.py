"""``Settings``: client defaults and named services from the environment (or a TOML file).

Every field is read from an ``HTTP_CLIENT_``-prefixed environment variable
(``HTTP_CLIENT_TIMEOUT=10``); named services use ``__`` as the nesting
delimiter::

    HTTP_CLIENT_SERVICES__MASTER_DATA__BASE_URL=https://master-data.internal
    HTTP_CLIENT_SERVICES__MASTER_DATA__API_KEY=...          # a SecretStr
    HTTP_CLIENT_SERVICES__MASTER_DATA__TIMEOUT=5
    HTTP_CLIENT_CONFIG_FILE=/etc/app/http.toml              # optional

The TOML file may set any field at the top level and a ``[services.<name>]``
table per service. Priority, highest first: keyword arguments, environment,
the TOML file, the defaults; service tables are merged key by key, so the file
can hold the URLs and the environment the secrets. Service names are
case-insensitive and ``-`` equals ``_`` (``"master-data"`` is the service
configured by ``HTTP_CLIENT_SERVICES__MASTER_DATA__*``).

Every problem raises :class:`~httpx_resilience.ConfigurationError` naming the
environment variable (and the field), never a raw pydantic traceback.

The models need the ``settings`` extra (pydantic-settings):
``pip install 'httpx-resilience[settings]'``. They are imported on first use
of :class:`Settings` or :class:`ServiceSettings`, and without the extra that
first use raises :class:`ImportError` with the install hint; :func:`service_key`,
:func:`env_var_for` and :data:`ENV_PREFIX` need nothing beyond the core.

The package's parts: ``_models`` (:class:`Settings` and
:class:`ServiceSettings`), ``_names`` (:func:`service_key`), ``_toml`` (the
config file) and ``_errors`` (:func:`env_var_for`, errors and warnings told
by environment variable).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import ENV_PREFIX
from ._errors import env_var_for as env_var_for  # imported from here, not in __all__
from ._names import service_key

if TYPE_CHECKING:
    from ._models import ServiceSettings, Settings

__all__ = ["ENV_PREFIX", "INSTALL_HINT", "ServiceSettings", "Settings", "service_key"]

INSTALL_HINT = "pip install 'httpx-resilience[settings]'"
"""How to install what :class:`Settings` needs."""

_LAZY = frozenset({"ServiceSettings", "Settings"})


def _load_models() -> Any:
    """The ``_models`` module; :class:`ImportError` with :data:`INSTALL_HINT` without the extra."""
    try:
        return importlib.import_module("._models", __name__)
    except ImportError as exc:
        missing = exc.name or "pydantic-settings"
        if not missing.startswith(("pydantic", "typing_extensions", "annotated_types", "dotenv")):
            raise  # a bug of ours, not a missing extra
        raise ImportError(
            f"Settings needs pydantic-settings (missing: {missing}): {INSTALL_HINT}",
            name=exc.name,
        ) from exc


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_load_models(), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
