"""FASTAPI_TELEMETRY: FastAPI's native OpenTelemetry reports to the configured providers only when
it is on (off, FastAPI would look for providers on every request).

Each case runs in its own interpreter: OpenTelemetry's global tracer provider is set once per
process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
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

async def main() -> None:
    app = create_app(Settings(fastapi_telemetry=sys.argv[1] == "true"))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        status = (await client.get("/health")).status_code
    spans = [span.name for span in exporter.get_finished_spans()]
    print(json.dumps({"status": status, "spans": spans}))

asyncio.run(main())
"""


def spans_with(enabled: str, database_url: str) -> list[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "ENVIRONMENT": "test"}
    result = subprocess.run(  # noqa: S603  (our own interpreter and script)
        [sys.executable, "-c", SCRIPT, enabled],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200, answer
    spans: list[str] = answer["spans"]
    return spans


@pytest.mark.parametrize(("enabled", "traced"), [("true", True), ("false", False)])
def test_requests_are_traced_only_with_fastapi_telemetry_on(
    enabled: str, traced: bool, database_url: str
) -> None:
    spans = spans_with(enabled, database_url)
    assert bool(spans) is traced, spans
    if traced:
        assert any("GET" in name for name in spans), spans
