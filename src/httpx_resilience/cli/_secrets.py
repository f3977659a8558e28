"""The CLI's credentials: ``--auth bearer:…|basic:…|apikey:…``, secrets from env or a file.

A secret given on the command line is visible to every user of the machine
(``ps``) and stays in the shell's history, so each secret part may instead
name where to read it: ``env:NAME`` (an environment variable) or ``@PATH``
(a file, trailing newline removed). Errors name the option and the fix, and
never show the secret.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from ..auth import APIKeyAuth, BasicAuth, BearerAuth

__all__ = ["AUTH_HELP", "CLIError", "parse_auth", "read_secret", "read_value"]

AUTH_HELP = (
    "credentials: bearer:TOKEN, basic:USER:PASSWORD, apikey:KEY or apikey:NAME=KEY "
    "(a header; apikey-query:NAME=KEY puts it in the query); each secret may be "
    "env:VAR or @FILE instead of the value"
)


class CLIError(ValueError):
    """A bad command-line value: the message names the option and the fix."""


def read_secret(spec: str, option: str) -> str:
    """The secret ``spec`` names: ``env:VAR``, ``@FILE`` or the value itself."""
    if spec.startswith("env:"):
        name = spec[4:]
        value = os.environ.get(name)
        if not name or value is None:
            raise CLIError(f"{option}: the environment variable {name!r} is not set")
        return value
    if spec.startswith("@"):
        return read_value(spec, option).rstrip("\r\n")
    return spec


def read_value(spec: str, option: str) -> str:
    """``@FILE`` read as text (``@-``: standard input), anything else as given."""
    if not spec.startswith("@"):
        return spec
    path = spec[1:]
    if path == "-":
        import sys

        return sys.stdin.read()
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise CLIError(f"{option}: cannot read {path!r}: {exc.strerror or exc}") from None


def parse_auth(spec: str) -> httpx.Auth:
    """The auth handler ``--auth`` describes."""
    kind, sep, rest = spec.partition(":")
    kind = kind.strip().lower()
    if not sep or not rest:
        raise CLIError(f"--auth: expected KIND:VALUE; {AUTH_HELP}")
    if kind == "bearer":
        return BearerAuth(read_secret(rest, "--auth bearer"))
    if kind == "basic":
        user, sep, password = rest.partition(":")
        if not sep or not user:
            raise CLIError(
                "--auth basic: expected basic:USER:PASSWORD (PASSWORD may be env:VAR or @FILE)"
            )
        return BasicAuth(user, read_secret(password, "--auth basic"))
    if kind in ("apikey", "apikey-query"):
        name, sep, key = rest.partition("=")
        if not sep:
            name, key = "X-API-KEY" if kind == "apikey" else "api_key", rest
        if not name.strip():
            raise CLIError(f"--auth {kind}: the key's name is empty; expected {kind}:NAME=KEY")
        secret = read_secret(key, f"--auth {kind}")
        if kind == "apikey-query":
            return APIKeyAuth(secret, name=name.strip(), location="query")
        return APIKeyAuth(secret, name=name.strip(), location="header")
    raise CLIError(f"--auth: unknown kind {kind!r}; {AUTH_HELP}")
