"""An example tool gateway instrumented with toolctl.instrument.

It plays a deterministic script of tool calls (seeded) through four tools that behave like
real ones: `search_web` is sometimes too slow for its timeout, `get_weather` has a flaky
upstream, `crm_lookup` refuses the tenant whose credentials expired, `send_email` validates
its arguments and is rate limited. Every attempt becomes an OTel `execute_tool` span sent to
`toolctl serve` over OTLP/HTTP and/or a schema-v1 JSON line.

At the end it prints its own ground truth as JSON on stdout, counted by the tools themselves
(not by toolctl.instrument): per tool the calls, attempts, retries, errors and auth failures
that `toolctl stats --by tool` must report.

    python examples/gateway/gateway.py --endpoint http://127.0.0.1:4318 --events calls.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from toolctl.instrument import Instrument, RetryPolicy, ToolError, ToolResult, otlp_tracer_provider

TOOLS = ("search_web", "get_weather", "crm_lookup", "send_email")
TENANTS = ("acme", "globex", "initech")
EXPIRED_TENANT = "globex"  # its CRM credentials expired: every crm_lookup answers 401


@dataclass
class Request:
    """One tool call as the model asked for it, plus what the script makes its tool do."""

    tool: str
    call_id: str
    tenant: str
    args: dict[str, Any]
    failures: int = 0  # attempts that fail (transiently) before one succeeds


@dataclass
class Truth:
    """What happened, counted where it happened: in the tools and in the request loop."""

    calls: Counter = field(default_factory=Counter)
    attempts: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    auth_failures: Counter = field(default_factory=Counter)

    def report(self) -> dict[str, Any]:
        return {t: {"calls": self.calls[t], "attempts": self.attempts[t],
                    "retries": self.attempts[t] - self.calls[t], "errors": self.errors[t],
                    "auth_failures": self.auth_failures[t]} for t in TOOLS if self.calls[t]}


def script(n: int, seed: int) -> list[Request]:
    """The deterministic list of requests the gateway serves."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tool = TOOLS[i % len(TOOLS)] if i < len(TOOLS) else rng.choice(TOOLS)
        tenant = rng.choice(TENANTS)
        failures = 0
        if tool == "search_web":
            args = {"query": f"quarterly report {i}"}
            failures = 1 if rng.random() < 0.25 else 0  # first attempt too slow → TIMEOUT
        elif tool == "get_weather":
            args = {"city": rng.choice(["Oslo", "Lima", "Pune"])}
            failures = rng.choice([0, 0, 0, 1, 2, 3])  # 3 = every attempt fails: abandoned
        elif tool == "crm_lookup":
            args = {"customer_id": f"c-{rng.randrange(1000):03d}"}
        else:
            valid = rng.random() > 0.2
            args = {"to": f"team{i}@example.com" if valid else "not-an-address",
                    "subject": "Weekly report", "api_key": "sk-live0123456789abcdefXYZ"}
            failures = 1 if valid and rng.random() < 0.2 else 0  # RATE_LIMITED once
        out.append(Request(tool, f"call_{seed}_{i:04d}", tenant, args, failures))
    return out


class Gateway:
    """Four tools behind one instrumented dispatch."""

    SLOW_S = 0.25
    POLICIES = {
        "search_web": RetryPolicy(max_attempts=2, timeout_ms=100, backoff_ms=5),
        "get_weather": RetryPolicy(max_attempts=3, backoff_ms=5, multiplier=2),
        "crm_lookup": RetryPolicy(max_attempts=3, backoff_ms=5),  # 401 is final: never retried
        "send_email": RetryPolicy(max_attempts=2, backoff_ms=5),
    }

    def __init__(self, inst: Instrument, tracer_provider: Any = None):
        self.inst = inst
        self.truth = Truth()
        self._seen: Counter = Counter()  # attempts per call id, as the tools see them
        self._http = tracer_provider.get_tracer("example.http") if tracer_provider else None

    def _attempt(self, req: Request) -> int:
        self.truth.attempts[req.tool] += 1
        self._seen[req.call_id] += 1
        return self._seen[req.call_id]

    # -- the tools ---------------------------------------------------------------------------
    async def search_web(self, req: Request, query: str) -> dict:
        n = self._attempt(req)
        await asyncio.sleep(self.SLOW_S if n <= req.failures else 0.005)
        return {"results": [f"{query} — result {k}" for k in range(3)]}

    def get_weather(self, req: Request, city: str) -> ToolResult:
        n = self._attempt(req)
        time.sleep(0.002)
        if n <= req.failures:
            raise ToolError("UNAVAILABLE", f"weather upstream for {city} answered 503", http_status=503)
        return ToolResult({"city": city, "temp_c": 7.5}, confidence=0.9)

    async def crm_lookup(self, req: Request, customer_id: str) -> dict:
        self._attempt(req)
        status = 401 if req.tenant == EXPIRED_TENANT else 200
        if self._http is not None:  # the tool's HTTP call, as an HTTP client library traces it
            with self._http.start_as_current_span("GET /customers", attributes={
                    "http.request.method": "GET", "http.response.status_code": status}):
                await asyncio.sleep(0.002)
        if status == 401:
            self.truth.auth_failures[req.tool] += 1
            raise ToolError("UNAUTHENTICATED", "CRM token expired for tenant", http_status=401)
        return {"customer_id": customer_id, "tier": "gold"}

    def send_email(self, req: Request, to: str, subject: str, api_key: str) -> dict:
        n = self._attempt(req)
        if "@" not in to:
            raise ToolError("VALIDATION", f"`to` is not an e-mail address: {to!r}", http_status=400)
        if n <= req.failures:
            raise ToolError("RATE_LIMITED", "mail provider answered 429", http_status=429)
        return {"queued": True}

    # -- dispatch ----------------------------------------------------------------------------
    async def handle(self, req: Request) -> dict[str, Any]:
        """Serve one request: the result envelope the model gets back."""
        self.truth.calls[req.tool] += 1
        fn = getattr(self, req.tool)
        policy = self.POLICIES[req.tool]
        with self.inst.context(tenant=req.tenant):
            if asyncio.iscoroutinefunction(fn):
                out = await self.inst.arun(fn, {"req": req, **req.args}, tool=req.tool, policy=policy,
                                           call_id=req.call_id, record_args=req.args, stage="execute")
            else:
                out = await asyncio.to_thread(self.inst.run, fn, {"req": req, **req.args}, tool=req.tool,
                                              policy=policy, call_id=req.call_id,
                                              record_args=req.args, stage="execute")
        if not out.ok:
            self.truth.errors[req.tool] += 1
        return out.envelope()


async def serve_script(gw: Gateway, requests: list[Request], concurrency: int) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(req: Request) -> None:
        async with sem:
            await gw.handle(req)

    await asyncio.gather(*(one(r) for r in requests))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", help="OTLP/HTTP base URL of `toolctl serve` (default: "
                   "$OTEL_EXPORTER_OTLP_ENDPOINT, else http://127.0.0.1:4318)")
    p.add_argument("--no-spans", action="store_true", help="do not export spans")
    p.add_argument("--events", help="also append schema-v1 JSON lines to this file")
    p.add_argument("--requests", type=int, default=80, help="tool calls to serve (default 80)")
    p.add_argument("--seed", type=int, default=1, help="seed of the script (default 1)")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--service", default="example-gateway")
    p.add_argument("--version", default="v2.0.0", help="service.version: the canary dimension")
    p.add_argument("--capture", action="store_true",
                   help="record arguments and results (redacted) on spans and events")
    opts = p.parse_args(argv)
    if opts.no_spans and not opts.events:
        p.error("--no-spans needs --events (otherwise nothing is recorded)")

    provider = None
    if not opts.no_spans:
        provider = otlp_tracer_provider(opts.service, opts.version, endpoint=opts.endpoint)
    inst = Instrument(tracer_provider=provider, service=opts.service, version=opts.version,
                      events=opts.events, capture_arguments=opts.capture, capture_results=opts.capture)
    gw = Gateway(inst, provider)
    requests = script(opts.requests, opts.seed)
    asyncio.run(serve_script(gw, requests, opts.concurrency))
    if provider is not None:
        if not provider.force_flush(30_000):
            print("error: spans could not be exported in 30 s", file=sys.stderr)
            return 1
        provider.shutdown()
    if inst.sink is not None:
        inst.sink.close()
    json.dump({"service": opts.service, "version": opts.version, "requests": len(requests),
               "tools": gw.truth.report()}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
