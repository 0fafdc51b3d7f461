"""A TracerProvider that sends spans to ``toolctl serve`` (or any OTLP/HTTP receiver)."""

from __future__ import annotations

import os
from typing import Any

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"  # `toolctl serve`'s default bind


def traces_url(endpoint: str | None) -> str:
    """The OTLP/HTTP traces URL: ``endpoint`` (a base URL), else ``$OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
    (used as is), else ``$OTEL_EXPORTER_OTLP_ENDPOINT`` (base URL), else toolctl serve's default."""
    if endpoint is None:
        signal = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if signal:
            return signal
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT
    return endpoint.rstrip("/") + "/v1/traces"


def otlp_tracer_provider(service: str, version: str | None = None, *, endpoint: str | None = None,
                         token: str | None = None, resource: dict[str, Any] | None = None,
                         batch: bool = True) -> Any:
    """A ``TracerProvider`` with ``service.name``/``service.version`` (the canary dimension)
    exporting over OTLP/HTTP protobuf with gzip.

    ``token`` (default ``$TOOLCTL_TOKEN``) is sent as ``Authorization: Bearer`` for a
    ``toolctl serve`` that requires one. ``batch=False`` exports each span as it ends (for
    short scripts); otherwise call ``provider.shutdown()`` (or ``force_flush()``) before exit.
    Needs the ``opentelemetry-exporter-otlp-proto-http`` package.
    """
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    token = token if token is not None else os.environ.get("TOOLCTL_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    attrs: dict[str, Any] = {"service.name": service, **(resource or {})}
    if version is not None:
        attrs["service.version"] = version
    provider = TracerProvider(resource=Resource.create(attrs))
    exporter = OTLPSpanExporter(endpoint=traces_url(endpoint), headers=headers,
                                compression=Compression.Gzip, timeout=30)
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    return provider
