"""A ChaosServer profile: the routes and faults of ``chaos serve --profile FILE`` (TOML).

One ``[[routes]]`` table per route; its keys are the keywords of
:meth:`ChaosServer.route <httpx_resilience.testing.ChaosServer.route>`, with
``mix`` a table of :class:`~httpx_resilience.testing.FaultMix` fields and
``steps`` an array of :class:`~httpx_resilience.testing.Fault` tables::

    port = 8080                      # optional; --port wins

    [[routes]]
    path = "/orders"
    statuses = [503, 503, 200]
    retry_after = 1

    [[routes]]
    path = "/search"
    rate_limit = 20
    mix = { error_503 = 0.1, reset = 0.05, seed = 1 }

    [[routes]]
    path = "/flaky"
    steps = [{ status = 503 }, { reset = "before_headers" }, { status = 200 }]

Every mistake is a :class:`ProfileError` naming the file, the route and the
key, with what is allowed.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..testing.chaos import ChaosServer, Fault, FaultMix

__all__ = ["Profile", "ProfileError", "load_profile"]

_ROUTE_KEYS = frozenset(inspect.signature(ChaosServer.route).parameters) - {"self"}
_MIX_KEYS = frozenset(f.name for f in fields(FaultMix))
_FAULT_KEYS = frozenset(f.name for f in fields(Fault))


class ProfileError(ValueError):
    """A profile that cannot be served: the message says where and why."""


@dataclass(frozen=True)
class Profile:
    """The routes to install (keyword arguments of ``ChaosServer.route``) and a port."""

    routes: tuple[dict[str, Any], ...]
    port: int | None = None

    def install(self, server: ChaosServer) -> None:
        """Install every route on ``server``."""
        for route in self.routes:
            server.route(**route)


def _toml(path: Path) -> dict[str, Any]:
    loads: Callable[[str], dict[str, Any]] | None = None
    for module_name in ("tomllib", "tomli"):  # tomllib: Python 3.11+; tomli: 3.10
        with contextlib.suppress(ImportError):
            loads = importlib.import_module(module_name).loads
            break
    if loads is None:  # pragma: no cover - Python 3.10 without tomli
        raise ProfileError(
            "reading a TOML profile on Python 3.10 needs tomli: "
            "pip install 'httpx-resilience[settings]'"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        return loads(text)
    except ValueError as exc:  # TOMLDecodeError is a ValueError
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None


def _only(where: str, table: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        allowed_keys = ", ".join(sorted(allowed))
        raise ProfileError(f"{where}: unknown key(s) {unknown}; allowed: {allowed_keys}")


def _route(where: str, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ProfileError(f"{where}: expected a table of route settings, got {table!r}")
    _only(where, table, _ROUTE_KEYS)
    if not isinstance(table.get("path"), str) or not table["path"].startswith("/"):
        raise ProfileError(f"{where}: 'path' is required and must start with '/'")
    route = dict(table)
    where = f"{where} ({route['path']})"
    probe = ChaosServer()  # not started: route() only checks and records the route
    try:
        if "mix" in route:
            _only(f"{where}.mix", route["mix"], _MIX_KEYS)
            route["mix"] = FaultMix(**route["mix"])
        if "steps" in route:
            steps = []
            for i, step in enumerate(route["steps"]):
                _only(f"{where}.steps[{i}]", step, _FAULT_KEYS)
                steps.append(Fault(**step))
            route["steps"] = steps
        probe.route(**route)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ProfileError):
            raise
        raise ProfileError(f"{where}: {exc}") from None
    return route


def load_profile(path: str | Path) -> Profile:
    """Read and check a profile; nothing is served until every route is valid."""
    file = Path(path).expanduser()
    data = _toml(file)
    _only(str(file), data, frozenset({"port", "routes"}))
    routes = data.get("routes", [])
    if not isinstance(routes, list) or not routes:
        raise ProfileError(f"{file}: no [[routes]] table; add at least one route")
    port = data.get("port")
    if port is not None and (not isinstance(port, int) or not 0 <= port <= 65535):
        raise ProfileError(f"{file}: port must be an integer within 0..65535, got {port!r}")
    checked = tuple(_route(f"{file}: routes[{i}]", r) for i, r in enumerate(routes))
    return Profile(checked, port)
