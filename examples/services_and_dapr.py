"""Named services, BaseAPIClient, Dapr and StoreClient (run: python examples/services_and_dapr.py).

A local ChaosServer plays every upstream: a master-data service that fails
twice before answering, a Dapr sidecar and a Store API. In a real deployment
the services come from the environment instead::

    HTTP_CLIENT_SERVICES__MASTER_DATA__BASE_URL=https://master-data.internal
    HTTP_CLIENT_SERVICES__MASTER_DATA__API_KEY=...
    DAPR_HTTP_PORT=3500  DAPR_API_TOKEN=...
    STORE_API_URL=https://store.example.com  STORE_API_KEY=...
"""

from __future__ import annotations

import asyncio
from typing import Any

from httpx_resilience import ExternalServiceError
from httpx_resilience.services import (
    BaseAPIClient,
    ServiceRegistry,
    StoreClient,
    get_dapr_client,
    get_service_client,
)
from httpx_resilience.settings import Settings
from httpx_resilience.testing import ChaosServer


class MasterDataClient(BaseAPIClient):
    """A typed client for one service, as an application would write it."""

    service_name = "master-data"

    async def item(self, item_id: str) -> Any:
        return await self.get(f"/api/v1/items/{item_id}")


async def main(server: ChaosServer) -> None:
    settings = Settings(
        retry_backoff_factor=0.01,  # quick retries for the demo (the default waits 1, 2, 4 s)
        services={"master-data": {"base_url": server.url, "api_key": "md-demo-key"}},
    )
    registry = ServiceRegistry(settings)

    # 1. get_service_client: one pooled client per service, retries included.
    async with get_service_client("master-data", registry=registry) as client:
        response = await client.get("/api/v1/items")
        print(f"items: {response.json_data['items']} after {response.attempts} attempts")
        assert response.attempts == 3
    async with get_service_client("master-data", registry=registry) as again:
        assert again is client  # the same pool, still open

    # 2. One error type: a 404 is an ExternalServiceError with its status.
    try:
        async with get_service_client("master-data", registry=registry) as client:
            await client.get("/api/v1/items/missing")
    except ExternalServiceError as exc:
        print(f"error: service={exc.service} status={exc.status_code}")
        assert exc.status_code == 404

    # 3. A BaseAPIClient subclass takes its URL and key from the same settings.
    async with MasterDataClient(settings=settings) as md:
        assert await md.item("42") == {"id": "42", "name": "Widget"}

    # 4. Dapr: publish, save, read; failures would return False/None, not raise.
    async with get_dapr_client(endpoint=server.url, api_token="dapr-demo", registry=registry) as dapr:
        assert await dapr.publish_event("pubsub", "orders", {"order": 1}) is True
        assert await dapr.save_state("statestore", "cart-1", {"items": 2}) is True
        assert await dapr.get_state("statestore", "cart-1") == {"items": 2}
        assert await dapr.get_state("statestore", "nope") is None
    print("dapr: published, saved, read back; a missing key is None")

    # 5. StoreClient: trimmed results for an LLM tool, 404 as "not found".
    async with StoreClient(server.url, "store-demo-key", metrics=False, settings=settings) as store:
        found = await store.search_tires({"width": 205, "profile": 55, "diameter": 16})
        print(f"store: {found['shown']} of {found['total']} tyres, keys {sorted(found['items'][0])}")
        assert found["shown"] == 5 and "image" not in found["items"][0]
        assert await store.get_tire("unknown") is None

    await registry.aclose_all()


def program(server: ChaosServer) -> None:
    server.route("/api/v1/items", statuses=[503, 502, 200], body={"items": ["a", "b"]})
    server.route("/api/v1/items/missing", status=404, body={"detail": "no such item"})
    server.route("/api/v1/items/42", body={"id": "42", "name": "Widget"})
    server.route("/v1.0/publish/pubsub/orders", status=204)
    server.route("/v1.0/state/statestore", status=204)
    server.route("/v1.0/state/statestore/cart-1", body={"items": 2})
    server.route("/v1.0/state/statestore/nope", status=204)
    tyres = [{"id": i, "name": f"Tyre {i}", "image": "x.png", "description": "..."} for i in range(9)]
    server.route("/tires/search", body={"items": tyres, "total": 9})
    server.route("/tires/unknown", status=404)


if __name__ == "__main__":
    with ChaosServer() as chaos:
        program(chaos)
        asyncio.run(main(chaos))
        saved = chaos.requests("/v1.0/state/statestore")[0]
        assert saved.json() == [{"key": "cart-1", "value": {"items": 2}}]
        assert saved.headers["dapr-api-token"] == "dapr-demo"
        assert chaos.requests("/api/v1/items")[0].headers["x-api-key"] == "md-demo-key"
    print("ok")
