#!/usr/bin/env python3
"""Generate the deterministic sample gateway logs under ``sample_logs/``.

The output imitates six hours of LLM-agent tool-call traffic seen by two
gateways (``gateway-eu`` and ``gateway-us``) on 2026-11-24 from 06:00Z to
12:00Z, written as gzipped JSON Lines in the toolctl event format (schema v1,
one line = one attempt of one tool call).  It contains four planted incidents
(auth-failure burst, retry storm, schema breakage, canary latency regression)
plus the small messes real logs have: mixed UTC offsets, ms/us timestamps,
CRLF endings, re-sent duplicate lines and blank lines.  ``sample_logs/README.md``
is written by this script too, so its numbers always match the data.

Usage::

    python scripts/generate_sample_logs.py            # seed 7 -> sample_logs/
    python scripts/generate_sample_logs.py --seed 8 --out /tmp/other

The same seed gives byte-identical files (gzip mtime is 0 and the name stored
in the gzip header is fixed), so the committed data can be regenerated and
checked with ``sha256sum``.  Only the standard library is used.
"""

import argparse
import gzip
import json
import math
import os
import random
import sys
from datetime import datetime, timedelta, timezone

# --------------------------------------------------------------------------
# Fixed parameters of the scenario.  Times are seconds after WINDOW_START.
# --------------------------------------------------------------------------

WINDOW_START = datetime(2026, 11, 24, 6, 0, 0, tzinfo=timezone.utc)
WINDOW_SECONDS = 6 * 3600
PART_SECONDS = 2 * 3600  # one output file per service and 2-hour part
DEFAULT_SESSIONS = 5600  # ~40.5k events; keeps sample_logs/ under 4 MB


def at(hhmm):
    """Seconds after WINDOW_START for a "HH:MM" (UTC) time on the sample day."""
    hours, minutes = (int(x) for x in hhmm.split(":"))
    return (hours - 6) * 3600 + minutes * 60


STABLE, CANARY = "v1.8.2", "v1.9.0-rc1"
CANARY_SESSION_SHARE = 0.15  # canary routing is sticky per agent session

# Incident 1: a credential rotation at globex goes wrong; only tools that use
# the tenant's own service account are affected.
AUTH_TENANT = "globex"
AUTH_TOOLS = ("sql_query", "create_ticket", "send_email")
AUTH_START, AUTH_END = at("08:00"), at("08:20")
AUTH_FAIL_P = 0.92

# Incident 2: the fetch_url upstream pool flaps; clients retry harder than
# usual (5 attempts, short backoff), which is what makes it a storm.
STORM_TOOL = "fetch_url"
STORM_START, STORM_END = at("09:18"), at("09:43")
STORM_FIRST_FAIL_P = 0.80
STORM_RETRY_FAIL_P = 0.60
STORM_MAX_ATTEMPTS = 5

# Incident 3: a bad build on one gateway host writes broken log lines and
# also sends args in a new shape that the tool schemas reject (VALIDATION).
SCHEMA_HOST = "gw-eu-west-02"
SCHEMA_START, SCHEMA_END = at("10:40"), at("10:50")
SCHEMA_VALIDATION_P = 0.07
# Exact number of intentionally rejected lines per defect kind (sum = 150).
MALFORMED_KINDS = (
    ("missing_required_field", 35),
    ("latency_ms_string", 22),
    ("negative_latency", 14),
    ("bad_status_value", 22),
    ("unparseable_ts", 14),
    ("confidence_out_of_range", 14),
    ("truncated_json", 16),
    ("non_object_json", 8),
    ("invalid_utf8", 5),
)
REQUIRED_FIELDS = ("event_id", "ts", "tool", "status", "latency_ms")

# Incident 4: the canary regresses three tools from 07:00Z (a feature flag
# flip on v1.9.0-rc1), both at the median and in the tail.
REGRESSED_TOOLS = ("search_web", "sql_query", "vector_search")
REGRESSION_START = at("07:00")
REGRESSION_MEDIAN_FACTOR = 1.6
BASE_TAIL_P, BASE_TAIL_ALPHA = 0.01, 1.6
REGRESSED_TAIL_P, REGRESSED_TAIL_ALPHA = 0.05, 1.15

# Background error behaviour.
RETRYABLE_FIRST_P = 0.04  # first attempt fails with a retryable error
RETRY_FAIL_P = 0.35  # a retry fails again
MAX_ATTEMPTS = 3
NON_RETRYABLE_P = 0.01
NO_CALL_ID_P = 0.005  # legacy clients that send no call id

# Log-file messes.
N_DUPLICATES = 28
N_BLANK_LINES = 11
CRLF_FILE = ("gateway-us", 0)  # (service, part index)
CRLF_HOST = "gw-us-east-01"  # only this host's lines are CRLF in that file

# tool -> (median latency ms, lognormal sigma, timeout_ms, popularity weight)
TOOLS = {
    "search_web": (450, 0.60, 30000, 14),
    "get_weather": (120, 0.40, 10000, 6),
    "sql_query": (220, 0.90, 30000, 9),
    "send_email": (350, 0.50, 30000, 4),
    "create_ticket": (280, 0.50, 30000, 4),
    "fetch_url": (600, 0.80, 30000, 10),
    "read_file": (25, 0.50, 10000, 8),
    "write_file": (40, 0.50, 10000, 4),
    "run_python": (1400, 0.70, 60000, 5),
    "get_calendar_events": (150, 0.45, 10000, 3),
    "create_calendar_event": (210, 0.45, 10000, 2),
    "lookup_customer": (90, 0.50, 10000, 5),
    "get_stock_price": (60, 0.35, 10000, 2),
    "summarize_document": (1900, 0.50, 60000, 4),
    "vector_search": (70, 0.50, 10000, 10),
    "traduire_texte": (380, 0.50, 30000, 2),
    "查询库存": (110, 0.50, 10000, 2),
    "send_slack_message": (180, 0.40, 10000, 3),
    "geocode_address": (80, 0.40, 10000, 2),
    "list_files": (20, 0.40, 10000, 5),
}

# Gateway hosts: (name, service, region, UTC offset in minutes of the log
# clock, timestamp precision, share of the service's sessions).  Two hosts
# log in local time, two log microseconds -- the parser must cope with both.
HOSTS = (
    ("gw-eu-west-01", "gateway-eu", "eu-west-1", 0, "milliseconds", 0.40),
    ("gw-eu-west-02", "gateway-eu", "eu-west-1", 0, "microseconds", 0.35),
    ("gw-eu-north-01", "gateway-eu", "eu-north-1", 120, "milliseconds", 0.25),
    ("gw-us-east-01", "gateway-us", "us-east-1", -300, "milliseconds", 0.40),
    ("gw-us-east-02", "gateway-us", "us-east-1", 0, "microseconds", 0.30),
    ("gw-us-west-01", "gateway-us", "us-west-2", 0, "milliseconds", 0.30),
)
# This older host build does not write the optional schema_version field.
HOSTS_WITHOUT_SCHEMA_VERSION = ("gw-us-west-01",)

NAMED_TENANTS = (
    "acme", "globex", "initech", "umbrella", "hooli", "stark-industries",
    "wayne-enterprises", "wonka", "cyberdyne", "soylent", "tyrell",
    "massive-dynamic", "aperture", "vandelay", "pied-piper", "oscorp",
    "dunder-mifflin", "gringotts", "monarch", "nakatomi",
)
TENANTS = NAMED_TENANTS + tuple(f"tenant-{i:03d}" for i in range(1, 31))
N_USERS = 200

ERRORS = {
    # code: (http_status, retryable, stage, messages)
    "TIMEOUT": (504, True, "execute", ("tool call exceeded timeout_ms",)),
    "UNAVAILABLE": (503, True, "execute", (
        "upstream unavailable: connection refused",
        "upstream connect error or disconnect/reset before headers",
        "no healthy upstream",
    )),
    "RATE_LIMITED": (429, True, "execute", (
        "rate limit exceeded for tenant, retry after 1s",
        "upstream quota exhausted (429)",
    )),
    "INVALID_ARGUMENT": (400, False, "execute", (
        "tool rejected arguments: value out of range",
        "tool rejected arguments: unsupported option",
    )),
    "NOT_FOUND": (404, False, "execute", (
        "requested resource does not exist",
        "no record matches the given id",
    )),
    "INTERNAL": (500, False, "execute", (
        "internal error in tool adapter",
        "unexpected response from tool backend",
    )),
    "UNAUTHENTICATED": (401, False, "authorize", (
        "tenant credential expired or revoked",
        "invalid API key for tool backend",
    )),
    "PERMISSION_DENIED": (403, False, "authorize", (
        "service account lacks permission for this tool",
    )),
    "VALIDATION": (400, False, "validate", ()),  # message built from args
}

# --------------------------------------------------------------------------
# Realistic-looking args / data per tool.
# --------------------------------------------------------------------------

QUERIES = (
    "latest kubernetes release notes", "best hiking trails near zurich",
    "python asyncio timeout example", "quarterly revenue acme corp",
    "how to reset a postgres sequence", "weather warning berlin",
    "duckdb parquet partition pruning", "gdpr data retention rules",
    "cheap flights lisbon december", "rust borrow checker error E0502",
    "café opening hours münchen", "openapi 3.1 nullable fields",
)
CITIES = ("Berlin", "Paris", "New York", "Zürich", "São Paulo", "Tokyo",
          "Austin", "Dublin", "Kraków", "Toronto")
TABLES = ("orders", "invoices", "customers", "events", "shipments")
DOMAINS = ("docs.python.org", "en.wikipedia.org", "github.com",
           "news.ycombinator.com", "status.example.com", "arxiv.org")
SUBJECTS = ("Weekly report", "Invoice overdue", "Meeting follow-up",
            "Incident summary", "Welcome aboard")
FR_TEXTS = ("Bonjour, où est la gare ?", "Merci pour votre réponse rapide.",
            "La livraison est prévue pour jeudi.")
WAREHOUSES = ("上海", "深圳", "北京")


def make_args(rng, tool):
    """Small, plausible argument object for one call of ``tool``."""
    r = rng.randrange
    c = rng.choice
    if tool == "search_web":
        return {"query": c(QUERIES), "max_results": c((5, 10))}
    if tool == "get_weather":
        return {"city": c(CITIES), "units": "metric"}
    if tool == "sql_query":
        return {"sql": f"SELECT count(*) FROM {c(TABLES)} WHERE day = current_date - {r(1, 30)}",
                "database": "analytics"}
    if tool == "send_email":
        return {"to": f"team{r(1, 40)}@example.com", "subject": c(SUBJECTS)}
    if tool == "create_ticket":
        return {"project": c(("OPS", "SUP", "ENG")), "title": c(SUBJECTS), "priority": c(("P1", "P2", "P3"))}
    if tool == "fetch_url":
        return {"url": f"https://{c(DOMAINS)}/page/{r(1, 60)}"}
    if tool == "read_file":
        return {"path": f"/workspace/data/report_{r(1, 90)}.csv"}
    if tool == "write_file":
        return {"path": f"/workspace/out/result_{r(1, 90)}.md", "bytes": r(2, 200) * 100}
    if tool == "run_python":
        return {"code": c(("import pandas as pd\ndf = pd.read_csv('data.csv')\nprint(df.describe())",
                           "print(sum(range(10**6)))",
                           "import json; print(json.dumps({'ok': True}))"))}
    if tool == "get_calendar_events":
        return {"calendar": "primary", "days": c((1, 7, 14))}
    if tool == "create_calendar_event":
        return {"title": c(SUBJECTS), "start": f"2026-11-{r(25, 30)}T{r(8, 17):02d}:00:00Z",
                "duration_min": c((15, 30, 60))}
    if tool == "lookup_customer":
        return {"customer_id": f"C-{r(10400, 10800)}"}  # a recurring customer base
    if tool == "get_stock_price":
        return {"symbol": c(("ACME", "GLBX", "INIT", "HOOL", "UMBR"))}
    if tool == "summarize_document":
        return {"doc_id": f"doc-{r(1000, 1300)}", "max_words": c((100, 200, 400))}
    if tool == "vector_search":
        return {"index": "kb-prod", "query": c(QUERIES), "k": c((4, 8, 16))}
    if tool == "traduire_texte":
        return {"texte": c(FR_TEXTS), "cible": c(("en", "de", "es"))}
    if tool == "查询库存":
        return {"商品编号": f"SKU-{r(48000, 48300)}", "仓库": c(WAREHOUSES)}
    if tool == "send_slack_message":
        return {"channel": c(("#ops-alerts", "#sales", "#general")), "text": c(SUBJECTS)}
    if tool == "geocode_address":
        return {"address": c(("10 Downing St, London", "1 Infinite Loop, Cupertino", "Unter den Linden 77, Berlin"))}
    return {"path": c(("/workspace", "/workspace/data", "/workspace/out")), "recursive": c((True, False))}


def make_data(rng, tool):
    """Small result object for a successful call of ``tool``."""
    r = rng.randrange
    if tool in ("search_web", "vector_search"):
        return {"hits": r(0, 17), "top_score": round(rng.uniform(0.4, 0.95), 2)}
    if tool == "get_weather":
        return {"temp_c": round(rng.uniform(-8, 24), 1), "conditions": rng.choice(("clear", "cloudy", "rain", "snow"))}
    if tool == "sql_query":
        return {"rows": r(1, 5000), "truncated": False}
    if tool in ("send_email", "send_slack_message"):
        return {"queued": True}
    if tool == "create_ticket":
        return {"ticket": f"OPS-{r(4100, 4900)}"}
    if tool == "fetch_url":
        return {"http_status": 200, "bytes": r(2000, 400000), "content_type": "text/html"}
    if tool in ("read_file", "write_file"):
        return {"bytes": r(200, 200000)}
    if tool == "run_python":
        return {"exit_code": 0, "stdout_bytes": r(10, 4000)}
    if tool in ("get_calendar_events", "list_files"):
        return {"count": r(0, 40)}
    if tool == "create_calendar_event":
        return {"created": True}
    if tool == "lookup_customer":
        return {"found": True, "tier": rng.choice(("free", "pro", "enterprise"))}
    if tool == "get_stock_price":
        return {"price": round(rng.uniform(20, 400), 2), "currency": "USD"}
    if tool == "summarize_document":
        return {"words": r(80, 400)}
    if tool == "traduire_texte":
        return {"langue_source": "fr", "caractères": r(20, 400)}
    if tool == "查询库存":
        return {"库存": r(0, 900)}
    return {"lat": round(rng.uniform(-60, 60), 4), "lon": round(rng.uniform(-120, 120), 4)}


# --------------------------------------------------------------------------
# Small helpers.
# --------------------------------------------------------------------------

def weighted(rng, items, weights):
    """One item chosen by weight (thin wrapper to keep call sites short)."""
    return rng.choices(items, weights=weights, k=1)[0]


def fmt_ts(seconds, offset_minutes, precision):
    """RFC 3339 text for an instant, written on a clock at ``offset_minutes``.

    The local wall time is shifted so that the instant stays the same; UTC
    is written with ``Z`` like most producers do.
    """
    micros = int(round(seconds * 1_000_000))
    instant = WINDOW_START + timedelta(microseconds=micros)
    local = instant.astimezone(timezone(timedelta(minutes=offset_minutes)))
    text = local.isoformat(timespec=precision)
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def epoch_ms(seconds):
    return int(WINDOW_START.timestamp() * 1000 + seconds * 1000)


SNOWFLAKE_EPOCH_MS = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)


def snowflake(ms, worker, seq):
    """A Snowflake-style id (41-bit ms, 10-bit worker, 12-bit sequence) as text."""
    return str(((ms - SNOWFLAKE_EPOCH_MS) << 22) | (worker << 12) | (seq & 0xFFF))


def uuid7(rng, ms):
    """A UUIDv7 id: time-ordered, 74 random bits."""
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def model_call_id(rng, style):
    """Tool-call id in the style of the tenant's model provider."""
    if style == "openai":
        return "call_" + "".join(rng.choice(ALNUM) for _ in range(24))
    if style == "anthropic":
        return "toolu_01" + "".join(rng.choice(ALNUM) for _ in range(22))
    return "".join(rng.choice(ALNUM) for _ in range(9))  # mistral-style short id


def lognormal_ms(rng, median, sigma):
    return median * math.exp(sigma * rng.gauss(0.0, 1.0))


def sample_latency(rng, tool, version, t):
    """Latency of a completed tool run: lognormal body plus a Pareto tail.

    The canary regression (incident 4) multiplies the median and makes the
    tail both more frequent and heavier for the regressed tools.
    """
    median, sigma, _, _ = TOOLS[tool]
    tail_p, alpha = BASE_TAIL_P, BASE_TAIL_ALPHA
    if version == CANARY and tool in REGRESSED_TOOLS and t >= REGRESSION_START:
        median *= REGRESSION_MEDIAN_FACTOR
        tail_p, alpha = REGRESSED_TAIL_P, REGRESSED_TAIL_ALPHA
    latency = lognormal_ms(rng, median, sigma)
    if rng.random() < tail_p:
        latency *= 1.5 * rng.paretovariate(alpha)
    return latency


def error_latency(rng, code, tool, version, t):
    """Latency of a failed attempt; depends on where in the pipeline it failed."""
    if code == "TIMEOUT":
        return TOOLS[tool][2] + rng.uniform(0.5, 15.0)
    if code == "UNAVAILABLE":
        return lognormal_ms(rng, 15, 0.8)
    if code == "RATE_LIMITED":
        return lognormal_ms(rng, 3, 0.5)
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return lognormal_ms(rng, 6, 0.5)
    if code == "VALIDATION":
        return lognormal_ms(rng, 1.5, 0.4)
    if code == "INVALID_ARGUMENT":
        return 0.3 * sample_latency(rng, tool, version, t)
    if code == "NOT_FOUND":
        return 0.6 * sample_latency(rng, tool, version, t)
    return rng.uniform(0.2, 1.5) * sample_latency(rng, tool, version, t)


# --------------------------------------------------------------------------
# Population: tenants, users, hosts.
# --------------------------------------------------------------------------

class World:
    """Tenants, users and their habits; everything derived from the seed."""

    def __init__(self, rng):
        # Zipf-like tenant sizes: a few big customers, a long tail.
        self.tenant_weights = [1.0 / (rank + 1) ** 1.05 for rank in range(len(TENANTS))]
        self.call_style = {t: ("openai", "anthropic", "mistral")[i % 3] for i, t in enumerate(TENANTS)}
        # Every tenant gets at least one user; the rest follow tenant size.
        owners = list(TENANTS) + rng.choices(TENANTS, weights=self.tenant_weights, k=N_USERS - len(TENANTS))
        rng.shuffle(owners)
        self.users = {t: [] for t in TENANTS}
        for i, owner in enumerate(owners, start=1):
            self.users[owner].append(f"u-{i:04d}")
        # Each tenant uses the tool catalogue a bit differently.
        names = list(TOOLS)
        self.tool_names = names
        self.tool_weights = {}
        for tenant in TENANTS:
            weights = [TOOLS[n][3] * math.exp(rng.gauss(0, 0.5)) for n in names]
            if tenant == AUTH_TENANT:
                # globex is a back-office heavy user of the affected tools,
                # which is why the auth incident is visible at all.
                weights = [w * (4.0 if n in AUTH_TOOLS else 1.0) for w, n in zip(weights, names)]
            self.tool_weights[tenant] = weights
        self.hosts_by_service = {}
        for host in HOSTS:
            self.hosts_by_service.setdefault(host[1], []).append(host)

    def session_start(self, rng):
        """Start time of a session: traffic grows through the EU morning."""
        while True:
            t = rng.uniform(0, WINDOW_SECONDS)
            rate = 0.6 + 0.5 * (t / WINDOW_SECONDS) + 0.15 * math.sin(t / 2400.0)
            if rng.random() * 1.3 < rate:
                return t

    def service_for(self, rng, t):
        """US share rises as the US east coast wakes up."""
        p_us = 0.30 + 0.20 * (t / WINDOW_SECONDS)
        return "gateway-us" if rng.random() < p_us else "gateway-eu"


# --------------------------------------------------------------------------
# Simulation of calls and attempts.
# --------------------------------------------------------------------------

class Generator:
    """Turns sessions into attempt events and keeps the counters for the report."""

    def __init__(self, seed, n_sessions):
        self.rng = random.Random(seed)
        self.world = World(self.rng)
        self.n_sessions = n_sessions
        self.events = []  # dicts with private "_emit", "_host", "_service" keys
        self.event_ids = set()
        self.snowflake_seq = {}
        self.stats = {
            "calls": 0, "calls_without_call_id": 0, "retried_calls": 0,
            "calls_failed_after_retries": 0, "auth_failures": 0,
            "storm_calls": 0, "storm_attempts": 0, "storm_failed_attempts": 0,
            "validation_errors": 0, "timeouts": 0, "non_retryable_errors": 0,
            "canary_events": 0,
        }

    # -- ids -------------------------------------------------------------
    def new_event_id(self, host, t):
        """Event id assigned when the line is written (time ``t``).

        The two fleets differ, as they do in real life: gateway-eu writes
        Snowflake ids (decimal strings), gateway-us writes UUIDv7.
        """
        ms = epoch_ms(t)
        while True:
            if host[1] == "gateway-eu":
                worker = [h[0] for h in HOSTS].index(host[0])
                seq = self.snowflake_seq.get((worker, ms), 0)
                self.snowflake_seq[(worker, ms)] = seq + 1
                eid = snowflake(ms, worker, seq)
            else:
                eid = uuid7(self.rng, ms)
            if eid not in self.event_ids:  # the dedupe key must really be unique
                self.event_ids.add(eid)
                return eid

    def hex_id(self, bits):
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    # -- sessions --------------------------------------------------------
    def run(self):
        for _ in range(self.n_sessions):
            self.run_session()
        self.events.sort(key=lambda e: (e["_emit"], e["event_id"]))
        return self.events

    def run_session(self):
        rng, world = self.rng, self.world
        t = world.session_start(rng)
        tenant = weighted(rng, TENANTS, world.tenant_weights)
        ctx = {
            "tenant": tenant,
            "user": rng.choice(world.users[tenant]),
            "session_id": f"sess_{self.hex_id(64)}",
            "trace_id": self.hex_id(128),  # one trace per agent run (session)
            "version": CANARY if rng.random() < CANARY_SESSION_SHARE else STABLE,
        }
        service = world.service_for(rng, t)
        hosts = world.hosts_by_service[service]
        ctx["host"] = weighted(rng, hosts, [h[5] for h in hosts])
        n_turns = min(30, 1 + int(math.log(1 - rng.random()) / math.log(0.8)))
        reissue = []  # tools the model calls again after an auth error
        for turn in range(n_turns):
            if t >= WINDOW_SECONDS:
                break
            k = weighted(rng, (1, 2, 3), (70, 22, 8))
            tools = list(reissue)
            reissue = []
            while len(tools) < k:
                tool = weighted(rng, world.tool_names, world.tool_weights[tenant])
                if tool not in tools:
                    tools.append(tool)
            turn_end = t
            for tool in tools:
                start = t + rng.uniform(0.0, 0.05)  # parallel calls of one turn
                end, auth_failed = self.run_call(ctx, tool, start)
                turn_end = max(turn_end, end)
                # An LLM that sees a 401/403 often just tries again with a
                # fresh tool call -- this amplifies the auth burst.
                if auth_failed and rng.random() < 0.6:
                    reissue.append(tool)
            t = turn_end + lognormal_ms(rng, 4000, 0.8) / 1000.0  # model think time

    def run_call(self, ctx, tool, start):
        """Emit all attempts of one call; return (end time, auth failure?)."""
        rng = self.rng
        version = ctx["version"]
        timeout_ms = TOOLS[tool][2]
        has_call_id = rng.random() >= NO_CALL_ID_P
        call_id = model_call_id(rng, self.world.call_style[ctx["tenant"]]) if has_call_id else None
        call = {
            "call_id": call_id,
            # The agent runtime derives the key from session + model call id,
            # so every attempt of a call (and only those) shares it.
            "idempotency_key": f"{ctx['session_id']}/{call_id}" if has_call_id else None,
            "args": make_args(rng, tool),
        }
        self.stats["calls"] += 1
        self.stats["calls_without_call_id"] += not has_call_id

        in_storm = tool == STORM_TOOL and STORM_START <= start < STORM_END
        max_attempts = STORM_MAX_ATTEMPTS if in_storm else MAX_ATTEMPTS
        if not has_call_id:
            max_attempts = 1  # without a call id the client cannot retry safely
        self.stats["storm_calls"] += in_storm

        # Outcomes decided once per call (they are not retried).
        special = None
        if (ctx["tenant"] == AUTH_TENANT and tool in AUTH_TOOLS
                and AUTH_START <= start < AUTH_END and rng.random() < AUTH_FAIL_P):
            special = "UNAUTHENTICATED" if rng.random() < 0.7 else "PERMISSION_DENIED"
        elif (ctx["host"][0] == SCHEMA_HOST and SCHEMA_START <= start < SCHEMA_END
              and rng.random() < SCHEMA_VALIDATION_P):
            special = "VALIDATION"
        first_retryable = None
        if not in_storm and rng.random() < RETRYABLE_FIRST_P:
            # Few timeouts: at ~1% of attempts they would *be* the p99 and
            # hide the canary's latency tail (they still show at p99.9).
            first_retryable = weighted(rng, ("TIMEOUT", "UNAVAILABLE", "RATE_LIMITED"), (8, 52, 40))

        t = start
        for attempt in range(1, max_attempts + 1):
            code = None
            if special:
                code = special
            elif in_storm:
                p = STORM_FIRST_FAIL_P if attempt == 1 else STORM_RETRY_FAIL_P
                code = "UNAVAILABLE" if rng.random() < p else None
            elif attempt == 1:
                code = first_retryable
            elif rng.random() < RETRY_FAIL_P:
                code = first_retryable or "UNAVAILABLE"
            if code is None and attempt == 1 and rng.random() < NON_RETRYABLE_P:
                code = weighted(rng, ("INVALID_ARGUMENT", "NOT_FOUND", "INTERNAL"), (40, 40, 20))
            if code is None:
                latency = sample_latency(rng, tool, version, t)
                if latency >= timeout_ms:  # the heavy tail really does time out
                    code = "TIMEOUT"
            if code is not None:
                latency = error_latency(rng, code, tool, version, t)
            self.emit(ctx, tool, call, t, attempt, latency, code, timeout_ms)
            end = t + latency / 1000.0
            if in_storm:
                self.stats["storm_attempts"] += 1
                self.stats["storm_failed_attempts"] += code is not None
            if code is None or not ERRORS[code][1] or attempt == max_attempts:
                if attempt > 1:
                    self.stats["retried_calls"] += 1
                    self.stats["calls_failed_after_retries"] += code is not None
                return end, code in ("UNAUTHENTICATED", "PERMISSION_DENIED")
            # Exponential backoff with jitter; 429 honours a 1 s Retry-After;
            # the storm clients use a deliberately short backoff.
            if code == "RATE_LIMITED":
                backoff = 1.0 + rng.uniform(0, 0.25)
            elif in_storm:
                backoff = 0.1 * 2 ** (attempt - 1) * rng.uniform(0.5, 1.0)
            else:
                backoff = 0.2 * 2 ** (attempt - 1) * rng.uniform(0.5, 1.5)
            t = end + backoff
        raise AssertionError("unreachable")

    def emit(self, ctx, tool, call, t, attempt, latency, code, timeout_ms):
        """Build one event dict in the field order a real gateway writes."""
        rng = self.rng
        name, service, region, offset, precision, _ = ctx["host"]
        ev = {}
        if name not in HOSTS_WITHOUT_SCHEMA_VERSION:
            ev["schema_version"] = 1
        ev["event_id"] = self.new_event_id(ctx["host"], t + latency / 1000.0)
        ev["ts"] = fmt_ts(t, offset, precision)  # ts = attempt start
        ev["service"] = service
        ev["gateway_host"] = name  # extra field, not in the schema
        ev["region"] = region  # extra field, not in the schema
        ev["version"] = ctx["version"]
        ev["tenant"] = ctx["tenant"]
        ev["user"] = ctx["user"]
        ev["session_id"] = ctx["session_id"]
        ev["trace_id"] = ctx["trace_id"]
        ev["span_id"] = self.hex_id(64)
        if call["call_id"]:
            ev["call_id"] = call["call_id"]
            ev["idempotency_key"] = call["idempotency_key"]
        ev["tool"] = tool
        ev["stage"] = ERRORS[code][2] if code else "execute"
        ev["attempt"] = attempt
        ev["timeout_ms"] = timeout_ms
        ev["status"] = "error" if code else "ok"
        ev["latency_ms"] = round(latency, 1 if precision == "milliseconds" else 2)
        args = call["args"]
        if code:
            http_status, retryable, _, messages = ERRORS[code]
            ev["http_status"] = http_status
            ev["error_code"] = code
            if code == "VALIDATION":
                # The bad build renamed the first argument; the schema says it is required.
                missing = next(iter(args))
                args = {k: v for k, v in args.items() if k != missing}
                args[missing + "_v2"] = call["args"][missing]
                ev["message"] = f"args failed schema validation: '{missing}' is a required property"
            elif code == "TIMEOUT":
                ev["message"] = f"tool call exceeded timeout_ms={timeout_ms}"
            else:
                ev["message"] = rng.choice(messages)
            ev["retryable"] = retryable
        else:
            # Beta(20, 1.6): mean ~0.93, most mass between 0.85 and 0.99.
            ev["confidence"] = round(min(0.999, rng.betavariate(20, 1.6)), 3)
        ev["args"] = args
        if not code:
            ev["data"] = make_data(rng, tool)
        ev["_emit"] = t + latency / 1000.0  # lines are written when the attempt ends
        ev["_host"] = name
        ev["_service"] = service
        self.events.append(ev)
        s = self.stats
        s["canary_events"] += ctx["version"] == CANARY
        s["timeouts"] += code == "TIMEOUT"
        s["auth_failures"] += code in ("UNAUTHENTICATED", "PERMISSION_DENIED")
        s["validation_errors"] += code == "VALIDATION"
        s["non_retryable_errors"] += code in ("INVALID_ARGUMENT", "NOT_FOUND", "INTERNAL")

    # -- incident 3: malformed lines ---------------------------------------
    def malformed_lines(self):
        """Lines the store must reject, as (emit time, bytes, kind) tuples.

        Each starts from a plausible event of the broken host and is then
        damaged in exactly one way, so every line has a single clear reason.
        """
        rng = self.rng
        host = next(h for h in HOSTS if h[0] == SCHEMA_HOST)
        kinds = [k for k, n in MALFORMED_KINDS for _ in range(n)]
        rng.shuffle(kinds)
        out = []
        n_missing = 0  # rotates evenly through the required fields
        for kind in kinds:
            t = rng.uniform(SCHEMA_START, SCHEMA_END)
            tool = weighted(rng, self.world.tool_names, [TOOLS[n][3] for n in self.world.tool_names])
            tenant = weighted(rng, TENANTS, self.world.tenant_weights)
            latency = round(sample_latency(rng, tool, STABLE, t), 3)
            ev = {
                "schema_version": 1, "event_id": self.new_event_id(host, t + latency / 1000.0),
                "ts": fmt_ts(t, host[3], host[4]), "service": host[1],
                "gateway_host": host[0], "region": host[2], "version": STABLE,
                "tenant": tenant, "user": rng.choice(self.world.users[tenant]),
                "session_id": f"sess_{self.hex_id(64)}", "trace_id": self.hex_id(128),
                "span_id": self.hex_id(64),
                "call_id": model_call_id(rng, self.world.call_style[tenant]),
                "tool": tool, "stage": "execute", "attempt": 1,
                "timeout_ms": TOOLS[tool][2], "status": "ok", "latency_ms": latency,
                "confidence": round(min(0.999, rng.betavariate(20, 1.6)), 3),
                "args": make_args(rng, tool),
            }
            if kind == "missing_required_field":
                del ev[REQUIRED_FIELDS[n_missing % len(REQUIRED_FIELDS)]]
                n_missing += 1
            elif kind == "latency_ms_string":
                ev["latency_ms"] = f"{int(latency)}ms"
            elif kind == "negative_latency":
                ev["latency_ms"] = -round(rng.uniform(1, 500), 3)
            elif kind == "bad_status_value":
                ev["status"] = rng.choice(("OK", "failed"))
            elif kind == "unparseable_ts":
                ev["ts"] = "yesterday"
            elif kind == "confidence_out_of_range":
                ev["confidence"] = 1.7
            text = json.dumps(ev, ensure_ascii=False, separators=(",", ":"))
            if kind == "truncated_json":
                # Cut mid-line, as when a writer dies mid-flush; any strict
                # prefix of a JSON object is invalid JSON.
                text = text[: int(len(text) * rng.uniform(0.3, 0.8))]
            elif kind == "non_object_json":
                text = json.dumps([ev["event_id"], ev["ts"], tool, "ok", latency], ensure_ascii=False)
            line = text.encode("utf-8")
            if kind == "invalid_utf8":
                # Raw 0xFF 0xFE inside a string value: valid JSON shape, not UTF-8.
                ev["message"] = "@@BAD@@"
                text = json.dumps(ev, ensure_ascii=False, separators=(",", ":"))
                line = text.encode("utf-8").replace(b"@@BAD@@", b"caf\xff\xfe")
            out.append((t + latency / 1000.0 if latency > 0 else t, line, kind))
        return out


# --------------------------------------------------------------------------
# Writing the files.
# --------------------------------------------------------------------------

def part_of(seconds):
    """Index of the 2-hour file a line written at ``seconds`` goes to."""
    return min(WINDOW_SECONDS // PART_SECONDS - 1, max(0, int(seconds // PART_SECONDS)))


def file_name(service, part):
    start = WINDOW_START + timedelta(seconds=part * PART_SECONDS)
    return f"{service}/{start:%Y-%m-%dT%H}.jsonl.gz"


def build_files(gen, events, malformed):
    """Group lines per file, then add the duplicate, blank and CRLF messes.

    Returns {relative path: [bytes line incl. ending]} and per-file counters.
    """
    rng = gen.rng
    grouped = {}
    for ev in events:
        line = json.dumps({k: v for k, v in ev.items() if not k.startswith("_")},
                          ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        key = (ev["_service"], part_of(ev["_emit"]))
        grouped.setdefault(key, []).append((ev["_emit"], ev["_host"], line, "event"))
    for emit, line, kind in malformed:
        grouped.setdefault((HOSTS[1][1], part_of(emit)), []).append((emit, SCHEMA_HOST, line, kind))

    keys = sorted(grouped)
    files, counts = {}, {}
    # Spread the duplicates and blank lines over all files deterministically.
    dup_files = rng.choices(keys, k=N_DUPLICATES)
    blank_files = rng.choices(keys, k=N_BLANK_LINES)
    for key in keys:
        rows = sorted(grouped[key], key=lambda r: r[0])  # emission order
        lines = []
        for _, host, line, kind in rows:
            ending = b"\r\n" if key == CRLF_FILE and host == CRLF_HOST else b"\n"
            lines.append([line + ending, kind])
        n_dup = dup_files.count(key)
        # A gateway re-sends a line it did not get an ack for: an exact copy
        # shows up a few lines later.  Only clean event lines are re-sent.
        candidates = [i for i, (_, kind) in enumerate(lines) if kind == "event"]
        dup_sources = sorted(rng.sample(candidates, n_dup))
        inserts = {}
        for i in dup_sources:
            inserts.setdefault(min(len(lines), i + rng.randint(1, 40)), []).append([lines[i][0], "duplicate"])
        for i in range(blank_files.count(key)):
            ending = b"\r\n" if key == CRLF_FILE and i == 0 else b"\n"
            inserts.setdefault(rng.randrange(1, len(lines)), []).append([ending, "blank"])
        merged = []
        for i in range(len(lines) + 1):
            merged.extend(inserts.get(i, []))
            if i < len(lines):
                merged.append(lines[i])
        path = file_name(*key)
        files[path] = [line for line, _ in merged]
        c = {"lines": len(merged), "events": 0, "duplicate": 0, "blank": 0, "rejected": 0,
             "crlf": sum(1 for line, _ in merged if line.endswith(b"\r\n"))}
        for _, kind in merged:
            if kind in ("event", "duplicate", "blank"):
                c["events" if kind == "event" else kind] += 1
            else:
                c["rejected"] += 1
        counts[path] = c
    return files, counts


def write_gzip(path, lines):
    """Write a reproducible gzip: mtime 0 and a fixed inner file name."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    inner = os.path.basename(path)[: -len(".gz")]
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename=inner, mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            for line in lines:
                gz.write(line)


def readme_text(seed, gen, counts):
    """README for sample_logs/, generated so the numbers match the data."""
    s = gen.stats
    total = {k: sum(c[k] for c in counts.values())
             for k in ("lines", "events", "duplicate", "blank", "rejected", "crlf")}
    rows = "\n".join(
        f"| `{p}` | {c['lines']} | {c['events']} | {c['duplicate']} | {c['blank']} | {c['rejected']} | {c['crlf']} |"
        for p, c in counts.items())
    kinds = "\n".join(f"| `{k}` | {n} |" for k, n in MALFORMED_KINDS)
    return f"""# Sample gateway logs

Synthetic, deterministic tool-call logs for trying out `toolctl` (schema v1,
JSON Lines, gzip).  They cover **2026-11-24 06:00Z–12:00Z** from two gateways,
`gateway-eu` and `gateway-us`, one file per service and 2-hour part.

Regenerate (byte-identical for the same seed; default seed {seed}):

```
python scripts/generate_sample_logs.py
```

Nothing here is real data: tenants, users, ids and args are made up.

## Files

| file | lines | events | duplicate lines | blank lines | rejected lines | CRLF lines |
|---|---|---|---|---|---|---|
{rows}
| **total** | {total['lines']} | {total['events']} | {total['duplicate']} | {total['blank']} | {total['rejected']} | {total['crlf']} |

* **{total['events']} valid events** (one per attempt) from **{s['calls']} calls**;
  {s['calls_without_call_id']} events have no `call_id` (a call of their own).
  After dropping the duplicate lines by `event_id`, exactly these events remain.
* **{total['rejected']} lines are meant to be rejected** (incident 3 below).
* {total['duplicate']} exact duplicate lines (a gateway re-sending a line a few
  lines later; same `event_id`), {total['blank']} blank lines.
* Lines are in the order the gateway wrote them (attempt end); `ts` is the
  attempt **start**, so `ts` is not strictly increasing within a file.  A line
  goes to the file of the 2-hour part in which it was written.

## Traffic

* 20 tools (incl. unicode names `traduire_texte`, `查询库存`), 50 tenants
  (`acme`, `globex`, … `tenant-001`…`tenant-030`, Zipf-sized), 200 users
  (`u-0001`…), agent sessions of several turns (1–3 parallel calls per turn); a
  session is one trace (`trace_id`); every attempt has its own `span_id` and
  `event_id` (Snowflake-style decimal strings on `gateway-eu`, UUIDv7 on
  `gateway-us`).  `idempotency_key` is `<session_id>/<call_id>`.
* Versions: stable `{STABLE}` and canary `{CANARY}` (sticky per session,
  {CANARY_SESSION_SHARE:.0%} of sessions; {s['canary_events']} canary events).
* Latency: lognormal per tool (medians 20 ms–1.9 s) with a {BASE_TAIL_P:.0%}
  Pareto tail; attempts that exceed `timeout_ms` become `TIMEOUT` errors
  ({s['timeouts']} in total).
* Retries: ~{RETRYABLE_FIRST_P:.0%} of calls hit a retryable error
  (`TIMEOUT` 504 / `UNAVAILABLE` 503 / `RATE_LIMITED` 429, `retryable: true`)
  and are retried with the same `call_id` and `idempotency_key`, attempts
  2…{MAX_ATTEMPTS}. {s['retried_calls']} calls were retried (storm included),
  {s['calls_failed_after_retries']} of them still ended in an error.
* ~{NON_RETRYABLE_P:.0%} non-retryable errors (`INVALID_ARGUMENT` 400,
  `NOT_FOUND` 404, `INTERNAL` 500; {s['non_retryable_errors']} events).
* Extra fields outside the schema: `gateway_host`, `region`.
* Timestamps: mostly `Z`; host `gw-eu-north-01` logs `+02:00`, host
  `gw-us-east-01` logs `-05:00` (same instants).  `gw-eu-west-02` and
  `gw-us-east-02` write microseconds, the others milliseconds.
  `gw-us-west-01` omits the optional `schema_version`.
* CRLF: in `{file_name(*CRLF_FILE)}` the lines of host `{CRLF_HOST}` end in
  `\\r\\n`, the rest in `\\n`.

## Incidents (failure-modes table)

| # | what | when (UTC) | where | count |
|---|---|---|---|---|
| 1 | auth-failure burst: 401 `UNAUTHENTICATED` / 403 `PERMISSION_DENIED`, `stage: authorize`, `retryable: false` | 08:00–08:20 | tenant `{AUTH_TENANT}`, tools {', '.join(f'`{t}`' for t in AUTH_TOOLS)} | {s['auth_failures']} failed events |
| 2 | retry storm: `UNAVAILABLE` 503 on {STORM_FIRST_FAIL_P:.0%} of first attempts, {STORM_RETRY_FAIL_P:.0%} of retries; up to {STORM_MAX_ATTEMPTS} attempts per call (same `call_id` + `idempotency_key`), 50–800 ms backoff | 09:18–09:43 | tool `{STORM_TOOL}`, both gateways | {s['storm_calls']} calls, {s['storm_attempts']} attempts, {s['storm_failed_attempts']} failed |
| 3 | schema breakage: a bad build writes malformed lines; plus valid `VALIDATION` errors (400, `stage: validate`, renamed arg) | 10:40–10:50 | host `{SCHEMA_HOST}` (`gateway-eu`), file `{file_name('gateway-eu', 2)}` | {total['rejected']} rejected lines, {s['validation_errors']} VALIDATION events |
| 4 | canary latency regression: median ×{REGRESSION_MEDIAN_FACTOR}, tail {REGRESSED_TAIL_P:.0%} Pareto α={REGRESSED_TAIL_ALPHA} (vs {BASE_TAIL_P:.0%}, α={BASE_TAIL_ALPHA}) | from 07:00 | version `{CANARY}`, tools {', '.join(f'`{t}`' for t in REGRESSED_TOOLS)} | — |

Intentionally rejected lines of incident 3, by kind:

| kind | lines |
|---|---|
{kinds}

`missing_required_field` rotates through {', '.join(f'`{f}`' for f in REQUIRED_FIELDS)};
`bad_status_value` is `"OK"` or `"failed"`; `latency_ms_string` looks like
`"120ms"`; `unparseable_ts` is `"yesterday"`; `confidence_out_of_range` is
`1.7`; `truncated_json` is an object cut mid-line; `non_object_json` is a JSON
array; `invalid_utf8` has raw bytes `0xFF 0xFE` inside a string value.
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--out", default="sample_logs", help="output directory (default sample_logs)")
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS,
                        help=f"agent sessions to simulate (default {DEFAULT_SESSIONS})")
    args = parser.parse_args(argv)

    gen = Generator(args.seed, args.sessions)
    events = gen.run()
    malformed = gen.malformed_lines()
    files, counts = build_files(gen, events, malformed)

    sizes = {}
    for rel, lines in files.items():
        path = os.path.join(args.out, rel)
        write_gzip(path, lines)
        sizes[rel] = os.path.getsize(path)
    with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8", newline="\n") as fh:
        # No file sizes in the README: they depend on the zlib build, the
        # line counts do not.
        fh.write(readme_text(args.seed, gen, counts))

    total = {k: sum(c[k] for c in counts.values()) for k in ("events", "duplicate", "blank", "rejected")}
    print(f"wrote {len(files)} files to {args.out}/ ({sum(sizes.values()) / 1e6:.2f} MB): "
          f"{total['events']} events from {gen.stats['calls']} calls, "
          f"{total['rejected']} intended rejected lines, {total['duplicate']} duplicate lines, "
          f"{total['blank']} blank lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
