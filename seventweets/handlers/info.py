"""Routes that describe the node itself: health, metrics and the OpenAPI document."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from seventweets.handlers.base import JsonHandler
from seventweets.storage.database import Database


class HealthHandler(JsonHandler):
    route = "/health"
    database: Database

    async def get(self) -> None:
        await self.database.check()
        self.write_json(
            {"status": "ok", "name": self.settings["name"], "database": "ok"}
        )

    def error_extra_fields(self, status_code: int) -> dict[str, Any]:
        fields: dict[str, Any] = {"name": self.settings["name"]}
        if status_code == 503:
            fields["database"] = "unavailable"
        return fields


class MetricsHandler(JsonHandler):
    route = "/metrics"

    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(self.metrics.render())


@cache
def openapi_document() -> bytes:
    return resources.files("seventweets").joinpath("openapi.json").read_bytes()


class OpenApiHandler(JsonHandler):
    route = "/openapi.json"

    def get(self) -> None:
        self.finish(openapi_document())
