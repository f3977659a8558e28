"""A light, side-effect-free core: what `import httpx_resilience` loads and changes.

Each check runs in a fresh interpreter (a subprocess), since this test session
has long since imported everything.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import pytest

import httpx_resilience
from httpx_resilience.exceptions import ConfigurationError
from httpx_resilience.policies._testing_mode import TestingMode, active, cap_attempts
from httpx_resilience.policies.generic import retry_async

#: Never imported by the core (each is behind an extra, or a dependency of one).
HEAVY = (
    "pydantic", "pydantic_core", "pydantic_settings", "prometheus_client", "opentelemetry",
    "redis", "aiohttp", "yarl", "httptools", "rich", "jwt", "cryptography", "uvloop", "dotenv",
)
#: Our modules that load on first use only.
LAZY_MODULES = (
    "httpx_resilience.services", "httpx_resilience.settings._models",
    "httpx_resilience.testing.chaos", "httpx_resilience.transports.native",
    "httpx_resilience.transports.aiohttp", "httpx_resilience.observe.otel",
    "httpx_resilience.observe.prometheus", "importlib.metadata",
)
#: What `import httpx_resilience` may add to what `import httpx` loaded: the
#: standard library, the package itself, its one other declared dependency, and
#: what httpx depends on but imports later (on Python 3.10 the core imports
#: anyio, which brings the exceptiongroup and typing_extensions backports).
ALLOWED_TOP_LEVEL = {
    "httpx_resilience", "sniffio",
    "anyio", "httpcore", "h11", "certifi", "idna", "exceptiongroup", "typing_extensions",
}

NEW_MODULES = textwrap.dedent(
    """
    import json, sys
    import httpx
    {pre}
    before = set(sys.modules)
    {statement}
    added = sorted(set(sys.modules) - before)
    print(json.dumps({{"added": added, "httpx_loaded": sorted(before)}}))
    """
)


def run_python(code: str, env: dict[str, str] | None = None) -> str:
    """Run ``code`` in a fresh interpreter; its stdout (it must exit 0)."""
    import os

    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def modules_added_by(statement: str, pre: str = "") -> tuple[list[str], set[str]]:
    """The modules ``statement`` imports after ``import httpx`` (and ``pre``), and those
    loaded before it."""
    code = NEW_MODULES.format(statement=statement, pre=pre)
    out = json.loads(run_python(code).splitlines()[-1])
    return out["added"], set(out["httpx_loaded"])


def assert_stdlib_and_core_only(added: list[str], httpx_loaded: set[str]) -> None:
    """``added`` holds the standard library, httpx-resilience and sniffio only, and
    none of HEAVY (unless httpx itself loaded it: httpx imports rich when its CLI
    extra is installed) nor the lazily loaded parts."""
    tops = {name.split(".")[0] for name in added}
    foreign = {
        top for top in tops
        if top not in sys.stdlib_module_names and top not in ALLOWED_TOP_LEVEL
        and not top.startswith("_sysconfigdata")
    }
    assert not foreign, f"imported beyond httpx and the standard library: {sorted(foreign)}"
    heavy = {top for top in tops if top in HEAVY}
    assert not heavy, f"heavy modules imported: {sorted(heavy)}"
    assert not set(LAZY_MODULES) & set(added), sorted(set(LAZY_MODULES) & set(added))
    assert not {m.split(".")[0] for m in httpx_loaded} & {"pydantic", "prometheus_client"}


def test_import_loads_httpx_and_the_standard_library_only() -> None:
    """`import httpx_resilience` adds no third-party module to what httpx loaded."""
    added, httpx_loaded = modules_added_by("import httpx_resilience")
    assert "httpx_resilience.pipeline.transport" in added  # the core did load
    assert_stdlib_and_core_only(added, httpx_loaded)


def test_the_pytest_plugin_imports_nothing_heavy() -> None:
    """pytest loads the plugin in every session: it costs the core import and no more."""
    added, loaded = modules_added_by(
        "import httpx_resilience.testing.pytest_plugin", pre="import pytest"
    )
    assert "httpx_resilience.testing.pytest_plugin" in added
    assert_stdlib_and_core_only(added, loaded)


GLOBALS = textwrap.dedent(
    """
    import asyncio, json, logging, os, signal, sys, warnings
    import httpx

    def snapshot():
        loggers = {
            name: [len(lg.filters), len(lg.handlers), lg.level, lg.propagate, lg.disabled]
            for name, lg in logging.Logger.manager.loggerDict.items()
            if isinstance(lg, logging.Logger) and not name.startswith("httpx_resilience")
        }
        return {
            "loggers": loggers,
            "root": [len(logging.root.handlers), len(logging.root.filters), logging.root.level],
            "warnings": [repr(f) for f in warnings.filters],
            "meta_path": [repr(f) for f in sys.meta_path],
            "excepthooks": [repr(sys.excepthook), repr(sys.unraisablehook)],
            "signals": [repr(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM)],
            "loop_policy": type(asyncio.get_event_loop_policy()).__name__,
            "environ": sorted(os.environ.items()),
            "log_record_factory": repr(logging.getLogRecordFactory()),
        }

    before = snapshot()
    import httpx_resilience
    after = snapshot()
    ours = logging.getLogger("httpx_resilience")
    print(json.dumps({
        "changed": sorted(k for k in before if before[k] != after[k]),
        "new_loggers": sorted(set(after["loggers"]) - set(before["loggers"])),
        "our_handlers": [type(h).__name__ for h in ours.handlers],
    }))
    """
)


def test_importing_changes_nothing_global() -> None:
    """No filter, handler, level, warning filter, import hook, signal handler, loop policy
    or environment variable changes; only our own logger gets its NullHandler."""
    seen = json.loads(run_python(GLOBALS).splitlines()[-1])
    assert seen["changed"] == []
    assert seen["our_handlers"] == ["NullHandler"]
    assert all(name.startswith(("httpx_resilience", "httpcore", "httpx", "asyncio"))
               for name in seen["new_loggers"]), seen["new_loggers"]


TIMING = textwrap.dedent(
    """
    import time
    start = time.perf_counter()
    import {module}
    print(time.perf_counter() - start)
    """
)


def test_import_time_against_httpx_alone() -> None:
    """The import costs a bounded multiple of `import httpx` (best of 3 fresh runs each;
    the ratio is printed for the notes, no absolute time is asserted)."""
    def best(module: str) -> float:
        return min(float(run_python(TIMING.format(module=module))) for _ in range(3))

    httpx_alone, ours = best("httpx"), best("httpx_resilience")
    ratio = ours / httpx_alone
    print(f"import httpx_resilience / import httpx = {ratio:.2f}")
    assert ratio > 1.0  # ours includes httpx's
    # Loose on purpose (a shared machine is noisy): an extra imported by mistake
    # (pydantic alone adds more than httpx) shows in the module test above first.
    assert ratio < 6.0, f"the core import costs {ratio:.1f}x httpx's"


MISSING = textwrap.dedent(
    """
    import sys
    for name in ("pydantic_settings", "prometheus_client", "opentelemetry", "httptools",
                 "aiohttp", "jwt"):
        sys.modules[name] = None  # as if the extra were not installed
    import httpx_resilience as h

    def hint(action):
        try:
            action()
        except ImportError as exc:
            return str(exc)
        raise SystemExit(f"no ImportError from {action}")

    print(hint(lambda: h.Settings))
    print(hint(lambda: h.ServiceSettings))
    print(hint(lambda: h.BaseAPIClient("https://api.example.com")))
    print(hint(lambda: h.ServiceRegistry().settings))
    print(hint(lambda: h.PrometheusObserver()))
    print(hint(lambda: h.TracingObserver()))
    print(hint(lambda: h.NativeTransport))
    print(hint(lambda: h.AiohttpTransport))
    print(hint(lambda: h.JWTAuth("secret-key-of-32-bytes-minimum!!")))
    assert h.DaprClient is not None and h.StoreClient is not None  # importable without
    from httpx_resilience.settings import env_var_for, service_key
    print(env_var_for("services", service_key("Master-Data"), "base_url"))
    """
)


def test_a_missing_extra_names_the_install_command() -> None:
    """A name backed by a missing extra imports, and its first use says what to install."""
    lines = run_python(MISSING).splitlines()
    assert lines[-1] == "HTTP_CLIENT_SERVICES__MASTER_DATA__BASE_URL"
    extras = ["settings"] * 4 + ["prometheus", "otel", "fast", "aiohttp", "jwt"]
    assert len(lines) == len(extras) + 1, lines
    for line, extra in zip(lines, extras, strict=False):
        assert f"pip install 'httpx-resilience[{extra}]'" in line, line
    assert "pydantic_settings" in lines[0]


def test_lazy_names_are_listed_and_report_the_top_level_module() -> None:
    """The lazily loaded names are in __all__ and dir(), resolve, and say they live here."""
    lazy = {"BaseAPIClient", "DaprClient", "ServiceClient", "ServiceRegistry", "StoreClient",
            "get_dapr_client", "get_service_client", "Settings", "ServiceSettings",
            "NativeTransport", "AiohttpTransport", "PrometheusObserver", "TracingObserver"}
    assert lazy <= set(httpx_resilience.__all__)
    assert lazy <= set(dir(httpx_resilience))
    for name in lazy:
        assert getattr(httpx_resilience, name).__module__ == "httpx_resilience", name
    assert "httpx_resilience.Settings" in repr(httpx_resilience.Settings)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        httpx_resilience.Nope  # noqa: B018


def test_version_comes_from_the_package_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """__version__ is the installed distribution's; a source tree without metadata says so."""
    assert httpx_resilience.__version__ == metadata.version("httpx-resilience")

    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert httpx_resilience._version() == "0+unknown"


FILTERS = textwrap.dedent(
    """
    import json, logging
    import httpx_resilience as h
    from httpx_resilience.observe import logfilter

    def state():
        names = ("httpx", *logfilter.HTTPCORE_LOGGERS)
        return [len(logging.getLogger(n).filters) for n in names]

    seen = {{"import": state()}}
    {steps}
    print(json.dumps(seen))
    """
)


def filter_counts(steps: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The number of filters on httpx's and httpcore's loggers after each step."""
    code = FILTERS.format(steps=textwrap.dedent(steps).strip())
    result: dict[str, Any] = json.loads(run_python(code, env).splitlines()[-1])
    return result


ON = [1, 1, 1, 1, 1, 1]
OFF = [0, 0, 0, 0, 0, 0]


def test_importing_installs_no_log_filter_and_a_transport_does() -> None:
    """The filters come with the first transport (once), and go when switched off."""
    seen = filter_counts(
        """
        h.ResilientTransport()
        seen["transport"] = state()
        h.AsyncHTTPClient("https://api.example.com")
        seen["client"] = state()
        logfilter.set_httpx_log_redaction(False)
        h.ResilientTransport()
        seen["off"] = state()
        logfilter.set_httpx_log_redaction(True)
        seen["on"] = state()
        """
    )
    assert seen == {"import": OFF, "transport": ON, "client": ON, "off": OFF, "on": ON}


def test_a_client_alone_installs_the_log_filters() -> None:
    """AsyncHTTPClient is enough (it builds a transport)."""
    seen = filter_counts('h.AsyncHTTPClient("https://api.example.com")\nseen["client"] = state()')
    assert seen == {"import": OFF, "client": ON}


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_the_environment_variable_switches_the_log_filters_off(value: str) -> None:
    """HTTPX_RESILIENCE_REDACT_HTTPX_LOGS=0 keeps the filters off; the call still wins."""
    seen = filter_counts(
        """
        h.ResilientTransport()
        seen["transport"] = state()
        seen["enabled"] = logfilter.httpx_log_redaction_enabled()
        logfilter.set_httpx_log_redaction(True)
        seen["on"] = state()
        """,
        env={"HTTPX_RESILIENCE_REDACT_HTTPX_LOGS": value},
    )
    assert seen == {"import": OFF, "transport": OFF, "enabled": False, "on": ON}


def test_removing_leaves_other_filters_alone() -> None:
    """set_httpx_log_redaction(False) removes our filters only."""
    seen = filter_counts(
        """
        logging.getLogger("httpx").addFilter(logging.Filter("httpx"))
        logfilter.ensure_httpx_log_redaction()
        logfilter.ensure_httpx_log_redaction()
        seen["ensured"] = state()
        logfilter.set_httpx_log_redaction(False)
        seen["off"] = state()
        """
    )
    assert seen["ensured"] == [2, 1, 1, 1, 1, 1]
    assert seen["off"] == [1, 0, 0, 0, 0, 0]


def assert_our_filters(count: int) -> None:
    """httpx's logger and each of httpcore's carry ``count`` of our filters."""
    from httpx_resilience.observe import logfilter

    assert sum(isinstance(f, logfilter.RedactingFilter)
               for f in logging.getLogger("httpx").filters) == count
    for name in logfilter.HTTPCORE_LOGGERS:
        assert sum(isinstance(f, logfilter.ScrubbingFilter)
                   for f in logging.getLogger(name).filters) == count


@pytest.fixture
def fresh_switch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The log-filter switch as in a fresh process (undecided, nothing installed); the
    process's filters are put back afterwards."""
    from httpx_resilience.observe import logfilter

    installed = any(isinstance(f, logfilter.RedactingFilter)
                    for f in logging.getLogger("httpx").filters)
    logfilter.remove_httpx_log_redaction()
    monkeypatch.setattr(logfilter, "_enabled", None)
    monkeypatch.setattr(logfilter, "_settled", False)
    monkeypatch.delenv(logfilter.ENV_VAR, raising=False)
    yield logfilter
    logfilter.remove_httpx_log_redaction()
    if installed:
        logfilter.install_httpx_log_redaction()


def test_the_switch_in_process(fresh_switch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """ensure installs once; off removes and keeps later transports from installing;
    the environment variable decides only until a call does."""
    logfilter = fresh_switch
    monkeypatch.setenv(logfilter.ENV_VAR, " OFF ")
    assert not logfilter.httpx_log_redaction_enabled()
    logfilter.ensure_httpx_log_redaction()
    assert_our_filters(0)
    logfilter.set_httpx_log_redaction(True)
    assert logfilter.httpx_log_redaction_enabled()
    logfilter.ensure_httpx_log_redaction()
    assert_our_filters(1)
    logfilter.set_httpx_log_redaction(False)
    httpx_resilience.ResilientTransport()
    assert_our_filters(0)
    assert not logfilter.httpx_log_redaction_enabled()


def test_ensure_installs_once_by_default(fresh_switch: Any) -> None:
    """Without the variable the first call installs, and the next ones add nothing."""
    logfilter = fresh_switch
    assert logfilter.httpx_log_redaction_enabled()
    for _ in range(3):
        logfilter.ensure_httpx_log_redaction()
    assert_our_filters(1)


# -- the resilience_testing fixture (the plugin is loaded through its entry point) --


def test_the_fixture_turns_testing_mode_on(resilience_testing: TestingMode) -> None:
    """One attempt by default, and it is the mode in force."""
    assert resilience_testing == TestingMode(attempts=1)
    assert active() == resilience_testing
    assert cap_attempts(5) == 1


@pytest.mark.resilience_testing(attempts=3)
async def test_the_marker_sets_the_attempts(resilience_testing: TestingMode) -> None:
    """@pytest.mark.resilience_testing(attempts=3): three attempts, with no wait between them."""
    calls: list[int] = []

    async def failing() -> None:
        calls.append(1)
        raise ConnectionError("down")

    assert active() == TestingMode(attempts=3)
    with pytest.raises(ConnectionError):
        await retry_async(failing, max_attempts=10, delay=3600.0, exceptions=(ConnectionError,))
    assert len(calls) == 3  # an hour's delay would have timed the test out


@pytest.mark.parametrize("resilience_testing", [2, 4], indirect=True)
def test_the_fixture_takes_the_attempts_as_a_parameter(resilience_testing: TestingMode) -> None:
    """Indirect parametrization runs the test once per number of attempts."""
    assert resilience_testing.attempts in (2, 4)
    assert cap_attempts(10) == resilience_testing.attempts


@pytest.mark.resilience_testing(attempts=0)
def test_a_bad_attempts_marker_is_a_configuration_error(request: pytest.FixtureRequest) -> None:
    """attempts=0 on the marker fails the fixture with an error naming `attempts`."""
    with pytest.raises(ConfigurationError, match="attempts must be an int >= 1") as info:
        request.getfixturevalue("resilience_testing")
    assert info.value.field == "attempts"
    assert active() is None


def test_testing_mode_is_off_without_the_fixture() -> None:
    """The switch is off by default, and the fixture left nothing behind."""
    assert active() is None
    assert cap_attempts(5) == 5


def test_the_testing_names_are_exported_from_the_testing_package() -> None:
    """set_testing, testing_mode and TestingMode are importable from httpx_resilience.testing."""
    from httpx_resilience import testing

    assert testing.TestingMode is TestingMode
    assert {"TestingMode", "set_testing", "testing_mode"} <= set(testing.__all__)
    assert testing.TestingMode.__module__ == "httpx_resilience.testing"
    with testing.testing_mode(True, attempts=2) as mode:
        assert active() == mode == TestingMode(2)
