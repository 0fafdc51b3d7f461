"""The data contracts: the tool-call event (schema v1) and the shapes of results.

``ToolCallEvent`` is the documented schema (``toolctl schema`` prints its JSON Schema)
and the per-object validator used where events arrive one at a time (the collector's
HTTP endpoints). Bulk file ingest validates the same rules inside DuckDB
(``toolctl/store/sql/parse_batch.sql``) because Python per-row validation is ~10×
slower than the disk; ``tests/test_models_parity.py`` holds the two to the same
decisions line by line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from toolctl.timeutil import RFC3339, parse_rfc3339  # noqa: F401 (part of the contract)

SCHEMA_VERSION = 1

#: Longest accepted line in bytes, newline excluded (documented; ``--max-line-bytes``).
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
#: Rejected lines keep at most this much raw text in the store (documented).
REJECT_RAW_CAP = 64 * 1024


# Fields of schema v1, in a fixed order (also the order of the `events` table columns).
KNOWN_FIELDS = (
    "event_id", "ts", "tool", "status", "latency_ms", "schema_version", "trace_id",
    "span_id", "call_id", "session_id", "tenant", "user", "service", "version", "stage",
    "attempt", "idempotency_key", "timeout_ms", "error_code", "message", "retryable",
    "http_status", "confidence", "args", "data",
)


class ToolCallEvent(BaseModel):
    """One attempt of one tool call, as a gateway logs it (schema v1)."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)

    event_id: str = Field(min_length=1, description="Unique id of this attempt; the dedupe key.")
    ts: datetime = Field(description="When the attempt started: RFC 3339 with offset; stored as UTC.")
    tool: str = Field(min_length=1, description="Tool (function) name.")
    status: Literal["ok", "error"]
    latency_ms: float = Field(ge=0, allow_inf_nan=False, description="Wall time of the attempt in milliseconds.")
    schema_version: Literal[1] = 1
    trace_id: str | None = Field(None, description="W3C trace id; stored lowercase hex.")
    span_id: str | None = Field(None, description="Span id; stored lowercase hex.")
    call_id: str | None = Field(None, description="The model's tool call id; attempts share it.")
    session_id: str | None = None
    tenant: str | None = None
    user: str | None = None
    service: str | None = None
    version: str | None = Field(None, description="Deployed release: the canary dimension.")
    stage: Literal["validate", "authorize", "execute"] | None = None
    attempt: StrictInt = Field(1, ge=1, le=2**31 - 1)
    idempotency_key: str | None = None
    timeout_ms: float | None = Field(None, ge=0, allow_inf_nan=False)
    error_code: str | None = None
    message: str | None = None
    retryable: StrictBool | None = None
    http_status: StrictInt | None = Field(None, ge=-(2**31), le=2**31 - 1)
    confidence: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    args: dict[str, Any] | None = None
    data: dict[str, Any] | None = None

    @field_validator("ts", mode="before")
    @classmethod
    def _ts_is_rfc3339(cls, value: Any) -> datetime:
        if not isinstance(value, str):
            raise ValueError("ts must be an RFC 3339 string")
        return parse_rfc3339(value)

    @field_validator("trace_id", "span_id")
    @classmethod
    def _lower_hex(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None

    @field_validator("attempt", "schema_version", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any) -> Any:
        # JSON null in an optional field means "absent"; for these, absent means the default.
        return 1 if value is None else value


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of schema v1 (what ``toolctl schema`` prints)."""
    schema = ToolCallEvent.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "toolctl tool-call event, schema v1"
    schema["additionalProperties"] = True
    return schema


class IngestSummary(BaseModel):
    """What one ``toolctl ingest`` run did. ``accepted + duplicates + rejected == lines``."""

    files: int = 0
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    bytes: int = 0
    spans: int = 0
    span_duplicates: int = 0
    redacted: int = 0
    sources: list[dict[str, Any]] = Field(default_factory=list)
