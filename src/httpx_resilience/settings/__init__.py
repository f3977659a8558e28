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

The package's parts: ``_models`` (:class:`Settings` and
:class:`ServiceSettings`), ``_names`` (:func:`service_key`), ``_toml`` (the
config file) and ``_errors`` (:func:`env_var_for`, errors and warnings told
by environment variable).
"""

from __future__ import annotations

from ._errors import ENV_PREFIX
from ._errors import env_var_for as env_var_for  # imported from here, not in __all__
from ._models import ServiceSettings, Settings
from ._names import service_key

__all__ = ["ENV_PREFIX", "ServiceSettings", "Settings", "service_key"]
