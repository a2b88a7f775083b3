"""FASTAPI_TELEMETRY: FastAPI's native OpenTelemetry reports to the configured providers only when
it is on (off, FastAPI would look for providers on every request).

Both cases run in one interpreter of their own: OpenTelemetry's global tracer provider is set
once per process, before the apps are created (as `opentelemetry-instrument` does).
"""

import pytest

from tests.support.database import run_in_new_interpreter

SCRIPT = """
import asyncio, json, sys
from httpx import ASGITransport, AsyncClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

from app.core.config import Settings
from app.main import create_app

async def spans_with(enabled: bool) -> dict[str, object]:
    exporter.clear()
    app = create_app(Settings(fastapi_telemetry=enabled))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        status = (await client.get("/health")).status_code
    return {"status": status, "spans": [span.name for span in exporter.get_finished_spans()]}

async def main() -> None:
    print(json.dumps({"true": await spans_with(True), "false": await spans_with(False)}))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def answers(database_url: str) -> dict[str, dict[str, object]]:
    """What an app with FASTAPI_TELEMETRY true, and one with it false, sent to the provider."""
    found: dict[str, dict[str, object]] = run_in_new_interpreter(SCRIPT, database_url)
    return found


@pytest.mark.parametrize(("enabled", "traced"), [("true", True), ("false", False)])
def test_requests_are_traced_only_with_fastapi_telemetry_on(
    enabled: str, traced: bool, answers: dict[str, dict[str, object]]
) -> None:
    answer = answers[enabled]
    assert answer["status"] == 200, answer
    spans = answer["spans"]
    assert isinstance(spans, list)
    assert bool(spans) is traced, spans
    if traced:
        assert any("GET" in name for name in spans), spans
