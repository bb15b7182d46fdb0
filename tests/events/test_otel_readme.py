"""The README's OpenTelemetry example runs as written, against a small OTLP/HTTP receiver.

The block sits under ``<!-- readme-test: needs an OTLP/HTTP collector ... -->``; this test
starts a receiver on 127.0.0.1 that decodes each ``POST /v1/traces`` (protobuf
``ExportTraceServiceRequest``) and points the exporter at it with the standard environment
variable, then runs the block's top-level ``await`` on trio.
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.proto.http",
                    reason="needs the otel extra: pip install 'rillet[otel]'")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- readme-test: needs an OTLP/HTTP collector"


def readme_block() -> str:
    text = README.read_text()
    found = re.search(re.escape(MARKER) + r".*?-->\n```python\n(.*?)```", text, re.S)
    assert found, f"README.md has no python block after {MARKER!r}"
    return found.group(1)


class Receiver(ThreadingHTTPServer):
    """Collects the spans of every export request: ``(service, name, span_id, parent_id)``."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, bytes, bytes]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers["content-length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = next(attr.value.string_value for attr in resource_spans.resource.attributes
                           if attr.key == "service.name")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.server.spans.append((service, span.name, span.span_id,
                                              span.parent_span_id))
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{port}/v1/traces")
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


async def test_the_readme_example_sends_the_runs_spans_to_a_collector(receiver: Receiver) -> None:
    code = compile(readme_block(), "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, Any] = {}
    pending = eval(code, namespace)  # a coroutine: the block awaits at top level
    if pending is not None:
        await pending
    names = sorted(name for _, name, _, _ in receiver.spans)
    assert names == ["ChatPromptTemplate", "StrOutputParser", "chat scripted",
                     "invoke_workflow joke"]
    assert {service for service, _, _, _ in receiver.spans} == {"jokes"}
    root = next(span_id for _, name, span_id, _ in receiver.spans if name.startswith("invoke"))
    assert all(parent == root for _, name, _, parent in receiver.spans
               if not name.startswith("invoke"))
