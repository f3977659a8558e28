"""``httpx-resilience request METHOD URL``: one request through the pipeline, outcome shown."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from ..client import AsyncHTTPClient
from ..config import ClientConfig
from ..exceptions import HTTPClientError
from ..pipeline import ResilienceInfo

__all__ = ["run_request"]


def run_request(args: argparse.Namespace) -> int:
    """Send the request described by ``args``; print status, outcome and body."""
    headers: dict[str, str] = {}
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            print(f"request: header {item!r} must look like 'Name: value'", file=sys.stderr)
            return 2
        headers[name.strip()] = value.strip()
    try:
        config = ClientConfig(timeout=args.timeout, retry_attempts=args.retries)
    except HTTPClientError as exc:
        print(f"request: {exc}", file=sys.stderr)
        return 2

    async def go() -> int:
        async with AsyncHTTPClient(config=config) as client:
            try:
                r = await client.request(
                    args.method, args.url, headers=headers,
                    content=args.data.encode() if args.data is not None else None,
                    idempotency_key=args.idempotency_key,
                )
            except HTTPClientError as exc:
                print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
        info = r.extensions.get("resilience")
        outcome = {
            "status": r.status_code,
            "attempts": r.attempts,
            "elapsed_s": round(r.elapsed, 4),
            "request_id": r.request_id,
        }
        if isinstance(info, ResilienceInfo):
            outcome["total_wait_s"] = round(info.total_wait, 4)
        print(json.dumps(outcome))
        print(r.text)
        return 0 if r.status_code < 400 else 1

    return asyncio.run(go())
