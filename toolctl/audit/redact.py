"""Redaction at ingest: secrets never reach the store.

Ingest runs in DuckDB, so redaction does not touch every row in Python. ``candidate_pattern``
is one RE2 expression (sensitive key names followed by ``:`` and the secret patterns); the
writer runs it with ``regexp_matches`` over the JSON text of args, data, message and
unknown fields (and the raw text of rejects), fetches only matching rows, redacts them here
and updates them before the insert.

What is redacted (the default set, extended or narrowed by a rules file):

* the value of any key whose normalised name (lower case, camelCase split, non-alphanumerics
  as ``_``) is, or ends with ``_`` + one of ``DEFAULT_KEYS`` (``password``, ``client_secret``,
  ``x-api-key``, ``accessToken`` … but not ``max_tokens``), whatever the value's type;
* in any string: bearer tokens, JWTs, API keys with well-known prefixes (``sk-``, ``ghp_`` …,
  ``AKIA``/``ASIA``, ``xox?-``, ``AIza``, Stripe ``sk_live_``), PEM private keys, card numbers
  (13–19 digits, first digit 2–6, passing Luhn, with no letter or digit on either side) and
  e-mail addresses (``emails = false`` to keep).

A redacted value becomes ``[REDACTED:<kind>:<fp>]``: ``fp`` is the first 4 hex digits of
HMAC-SHA256(store salt, secret). The salt is random per store (``audit_settings``), so equal
secrets correlate within a store but a fingerprint cannot be checked against guesses
without the store, nor matched across stores.

Rules file (TOML), from ``TOOLCTL_REDACTION_RULES`` or ``store.redaction_rules``::

    [redaction]
    emails = true                      # mask e-mail addresses
    extra_keys = ["ssn", "pin_code"]   # more sensitive key names
    allow_keys = ["csrf_token"]        # key names never redacted by key
    allow_values = ["sk-test-0000000000000000"]  # exact strings never redacted
    [[redaction.patterns]]
    name = "employee_id"
    regex = "EMP-[0-9]{6}"             # must be valid RE2 and Python re
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from toolctl.errors import UsageError
from toolctl.jsonio import unicode_json

RULES_ENV = "TOOLCTL_REDACTION_RULES"

DEFAULT_KEYS = ("password", "passwd", "pwd", "passphrase", "secret", "token", "api_key", "apikey",
                "authorization", "cookie", "private_key", "access_key", "secret_key",
                "credential", "credentials", "session_key")

#: (name, regex) valid in both RE2 (DuckDB) and Python ``re``; order matters (first wins).
DEFAULT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("private_key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:[^-]|-[^-])*(?:-----END [A-Z ]*PRIVATE KEY-----)?"),
    ("jwt", r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}"),
    ("bearer", r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"),
    ("api_key", r"sk-[A-Za-z0-9_-]{16,}"),
    ("api_key", r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})"),
    ("api_key", r"(?:AKIA|ASIA)[0-9A-Z]{16}"),
    ("api_key", r"xox[abposr]-[A-Za-z0-9-]{10,}"),
    ("api_key", r"AIza[0-9A-Za-z_-]{35}"),
    ("api_key", r"[rs]k_(?:live|test)_[0-9A-Za-z]{16,}"),
)
CARD_PATTERN = r"[2-6]\d(?:[ -]?\d){11,17}"
EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"


@dataclass(frozen=True)
class Rules:
    keys: tuple[str, ...] = DEFAULT_KEYS
    allow_keys: frozenset[str] = frozenset()
    allow_values: frozenset[str] = frozenset()
    patterns: tuple[tuple[str, str], ...] = DEFAULT_PATTERNS
    emails: bool = True
    source: str = "default"

    @property
    def all_patterns(self) -> tuple[tuple[str, str], ...]:
        extra = (("card", CARD_PATTERN),) + ((("email", EMAIL_PATTERN),) if self.emails else ())
        return self.patterns + extra

    @property
    def fingerprint(self) -> str:
        """What these rules redact, as a short digest (not where they were read from): a
        forwarding `toolctl ingest` compares its rules with the collector's by it."""
        doc = [list(self.keys), sorted(self.allow_keys), sorted(self.allow_values),
               [list(p) for p in self.patterns], self.emails]
        return hashlib.sha256(json.dumps(doc).encode("utf-8")).hexdigest()[:16]

    def candidate_pattern(self) -> str:
        """One RE2 pattern over JSON text: a row that can need redaction matches it."""
        return _candidate_pattern(self)

    def compiled(self) -> "re.Pattern[str]":
        return _compiled(self)


@lru_cache(maxsize=16)
def _candidate_pattern(rules: Rules) -> str:
    # A key *ending* in a sensitive word (JSON text: "...word": ), case-insensitive; camelCase
    # and separators are handled exactly in Python, this only has to be a superset.
    words = sorted({re.escape(k).replace("_", "[^\"]?") for k in rules.keys})
    keys = '(?i:"[^"]*(?:' + "|".join(words) + ')"\\s*:)'
    return "|".join([keys] + [f"(?:{p})" for _, p in rules.all_patterns])


#: Python's ``re`` tries a match at every position: for the email pattern that rescans a run of
#: local-part characters from each of its starts (a 128k-character argument took 25 s). A
#: match can only start where such a run starts, so Python's pattern says so (RE2, which
#: DuckDB's candidate scan uses, is linear and has no lookbehind).
_EMAIL_AT_RUN_START = r"(?<![A-Za-z0-9._%+-])" + EMAIL_PATTERN


#: A card number stands alone: a digit run inside a hex digest, a trace id or an order id
#: (``ORD4242…``, ``…a4242…f0``) is part of an identifier, and masking it would corrupt the
#: audit record. So Python's pattern wants no letter or digit on either side (which also makes
#: a 20+ digit run no card). A separator such as ``_``, ``:`` or a space still delimits one.
#: RE2's candidate scan keeps the plain pattern: a superset, as it must be.
_CARD_STANDING_ALONE = r"(?<![A-Za-z0-9])" + CARD_PATTERN + r"(?![A-Za-z0-9])"
_PYTHON_FORM = {EMAIL_PATTERN: _EMAIL_AT_RUN_START, CARD_PATTERN: _CARD_STANDING_ALONE}


@lru_cache(maxsize=16)
def _compiled(rules: Rules) -> "re.Pattern[str]":
    patterns = [_PYTHON_FORM.get(p, p) for _, p in rules.all_patterns]
    return re.compile("|".join(f"(?P<p{i}>{p})" for i, p in enumerate(patterns)))


def load_rules(path: str | Path | None) -> Rules:
    """Rules from a TOML file (see module docs); ``None`` gives the default set."""
    if path is None:
        return Rules()
    import tomllib

    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text("utf-8-sig"))  # Windows editors save UTF-8 with a byte-order mark
    except OSError as exc:
        raise UsageError(f"cannot read redaction rules {p}: {exc.strerror}",
                         hint=f"check the path given in --redaction-rules, ${RULES_ENV} or toolctl.toml's redaction.rules") from exc
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise UsageError(f"redaction rules {p}:{line}: not UTF-8 (byte 0x{exc.object[exc.start]:02x})",
                         hint="TOML files are UTF-8 text: save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"redaction rules {p} are not valid TOML: {exc}",
                         hint="see docs/audit.md for the format") from exc
    if "redaction" in doc:
        _known_keys(p, doc, ("redaction",), "")
        sec = doc["redaction"]
        if not isinstance(sec, dict):
            raise UsageError(f"redaction rules {p}: `redaction` must be a table", hint="write [redaction]")
        _known_keys(p, sec, _SECTION_KEYS, " in [redaction]")
    else:  # the section's keys at the top level
        sec = doc
        _known_keys(p, sec, _SECTION_KEYS + ("redaction",), "")
    patterns = list(DEFAULT_PATTERNS)
    if not isinstance(sec.get("patterns", []), list):
        raise UsageError(f"redaction rules {p}: `patterns` must be an array of tables",
                         hint='write [[redaction.patterns]] name = "x" regex = "..."')
    for i, item in enumerate(sec.get("patterns", [])):
        if not isinstance(item, dict) or not isinstance(item.get("regex"), str):
            _known_keys(p, item if isinstance(item, dict) else {}, ("name", "regex"), " in [[redaction.patterns]]")
            raise UsageError(f"redaction rules {p}: patterns[{i}] needs a `regex` string",
                             hint='write [[redaction.patterns]] name = "x" regex = "..."')
        _known_keys(p, item, ("name", "regex"), " in [[redaction.patterns]]")
        _check_regex(p, item["regex"])
        patterns.append((str(item.get("name", "custom")), item["regex"]))
    def strs(name: str) -> list[str]:
        v = sec.get(name, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise UsageError(f"redaction rules {p}: `{name}` must be a list of strings",
                             hint=f'write {name} = ["..."]; see docs/audit.md')
        return v
    allow = frozenset(normalise_key(k) for k in strs("allow_keys"))
    keys = tuple(dict.fromkeys(list(DEFAULT_KEYS) + [normalise_key(k) for k in strs("extra_keys")]))
    emails = sec.get("emails", True)
    if not isinstance(emails, bool):
        raise UsageError(f"redaction rules {p}: `emails` must be true or false",
                         hint="write emails = false to keep e-mail addresses (TOML booleans are unquoted)")
    return Rules(keys=keys, allow_keys=allow, allow_values=frozenset(strs("allow_values")),
                 patterns=tuple(patterns), emails=emails, source=str(p))


_SECTION_KEYS = ("emails", "extra_keys", "allow_keys", "allow_values", "patterns")


def _known_keys(path: Path, table: dict, known: tuple[str, ...], where: str) -> None:
    """A misspelt key would silently leave secrets unredacted: refuse it, naming the likely one."""
    import difflib

    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"redaction rules {path}: unknown key {key!r}{where}{guess}",
                             hint="keys: " + ", ".join(known) + "; see docs/audit.md")


def _check_regex(path: Path, regex: str) -> None:
    try:
        re.compile(regex)
        import duckdb

        duckdb.sql("SELECT regexp_matches('', $1)", params=[regex]).fetchall()  # RE2 syntax
    except Exception as exc:  # re.error or duckdb's InvalidInputException
        raise UsageError(f"redaction rules {path}: pattern {regex!r} is not valid in both RE2 and Python: "
                         f"{str(exc).splitlines()[0]}", hint="avoid look-arounds and back-references") from exc


def rules_path(configured: str | os.PathLike | None, flag: str | os.PathLike | None = None) -> str | None:
    """The rules file in effect: ``flag`` (--redaction-rules), else $TOOLCTL_REDACTION_RULES,
    else ``configured`` (toolctl.toml's redaction.rules); None: the built-in rules only."""
    chosen = flag or os.environ.get(RULES_ENV) or configured
    return str(chosen) if chosen else None


def rules_for(store: Any) -> Rules:
    """The store's rules: ``store.redaction_rules`` if set, else ``$TOOLCTL_REDACTION_RULES``."""
    rules = getattr(store, "redaction_rules", None)
    if rules is not None:
        return rules
    path = os.environ.get(RULES_ENV)
    return _rules_cached(path, Path(path).stat().st_mtime if path and Path(path).exists() else 0.0)


@lru_cache(maxsize=8)
def _rules_cached(path: str | None, _mtime: float) -> Rules:
    return load_rules(path or None)


def store_salt(store: Any) -> bytes:
    """The store's fingerprint key: ``store.redaction_salt`` if set (a connection that is not
    the store's, e.g. a decoding worker process of the collector), else read from the store."""
    given = getattr(store, "redaction_salt", None)
    if given is not None:
        return given
    salt = store.scalar("SELECT value FROM audit_settings WHERE key = 'redaction_salt'")
    return (salt or "").encode("ascii")


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def normalise_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", _CAMEL.sub("_", key).lower()).strip("_")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass
class Redactor:
    """Redacts JSON values and text with one store's salt; counts what it replaced."""

    rules: Rules
    salt: bytes
    count: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def marker(self, kind: str, secret: str) -> str:
        self.count += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        fp = hmac.new(self.salt, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:4]
        return f"[REDACTED:{kind}:{fp}]"

    def key_kind(self, key: str) -> str | None:
        k = normalise_key(key)
        if k in self.rules.allow_keys:
            return None
        for word in self.rules.keys:
            if k == word or k.endswith("_" + word):
                return word
        return None

    def text(self, s: str) -> str:
        """Mask every secret pattern in a string."""
        if s in self.rules.allow_values:
            return s
        names = self.rules.all_patterns

        def sub(m: "re.Match[str]") -> str:
            secret = m.group(0)
            if secret in self.rules.allow_values:
                return secret
            kind = names[int(m.lastgroup[1:])][0]
            if kind == "card":
                digits = re.sub(r"\D", "", secret)
                if not (13 <= len(digits) <= 19 and luhn_ok(digits)):
                    return secret
            return self.marker(kind, secret)

        return self.rules.compiled().sub(sub, s)

    def value(self, v: Any) -> Any:
        """Walk a decoded JSON value: sensitive keys replaced whole, strings pattern-masked."""
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                kind = self.key_kind(k)
                if kind is not None and x is not None and not (isinstance(x, str) and not isinstance(x, _Number)
                                                               and (x == "" or x.startswith("[REDACTED:"))):
                    secret = (x.text if isinstance(x, _Number) else x if isinstance(x, str)
                              else _exact_dumps(x, sort_keys=True, separators=(", ", ": ")))
                    out[k] = x if secret in self.rules.allow_values else self.marker(kind, secret)
                else:
                    out[k] = self.value(x)
            return out
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, _Number):
            return v
        if isinstance(v, str):
            return self.text(v)
        return v

    def json_text(self, text: str | None) -> str | None:
        """Redact a JSON document given as text (None stays None). Text with nothing to
        redact comes back as it was; redacted text keeps every number as written."""
        if text is None:
            return None
        before = self.count
        try:
            out = _exact_dumps(self.value(_exact_loads(text)))
        except RecursionError:
            # Nested deeper than Python reads (DuckDB stores it): what is in it cannot be
            # checked, and it was flagged as a candidate, so the whole value is withheld.
            return json.dumps(self.marker("too_deep", text))
        return text if self.count == before else out

    def raw_line(self, line: str) -> str:
        """Redact a line that may not be valid JSON (a reject): try JSON, else text rules.
        A line with nothing to redact comes back as it was."""
        try:
            doc = _exact_loads(line)
        except (ValueError, RecursionError):  # not JSON, or deeper than Python reads
            doc = None
        if isinstance(doc, (dict, list)):
            before = self.count
            out = _exact_dumps(self.value(doc))
            return line if self.count == before else out
        # Not JSON (or a bare scalar): sensitive "key": value pairs by regex, then patterns.
        return self.loose_text(line)

    def loose_text(self, line: str) -> str:
        """Free text (a message, a broken line): ``"key": value`` pairs by regex, then patterns."""
        def key_sub(m: "re.Match[str]") -> str:
            kind = self.key_kind(m.group("key"))
            if kind is None:
                return m.group(0)
            val = m.group("val")
            if val.startswith("[REDACTED:") or val.startswith('"[REDACTED:'):
                return m.group(0)
            return m.group("pre") + json.dumps(self.marker(kind, val))

        return self.text(_RAW_KEY_VALUE.sub(key_sub, line))


class _Number(str):
    """A JSON number as written (``1.50``, ``1E2``, ``1e400``): decoding it as a float would
    write back ``1.5``, ``100.0`` and ``Infinity`` (not JSON) where a secret was redacted
    beside it. Stands in the decoded document as a string holding a marker no real
    string holds (a random nonce between NULs), which ``_exact_dumps`` writes back as the
    number's text."""

    __slots__ = ("text",)


_NONCE = os.urandom(8).hex()
_NUMBER_MARK = re.compile(r'"\\u0000' + _NONCE + r'([-+.0-9eE]+)\\u0000"')


def _number(text: str) -> _Number:
    n = _Number("\x00" + _NONCE + text + "\x00")
    n.text = text
    return n


def _exact_loads(text: str) -> Any:
    return json.loads(text, parse_float=_number, parse_int=_number)


def _exact_dumps(doc: Any, **kwargs: Any) -> str:
    kwargs.setdefault("separators", (",", ":"))
    return _NUMBER_MARK.sub(lambda m: m.group(1), unicode_json(doc, **kwargs))


_RAW_KEY_VALUE = re.compile(
    r'(?P<pre>"(?P<key>[^"\\]{1,100})"\s*:\s*)(?P<val>"(?:[^"\\]|\\.)*"?|[^,}\]\s]+)')


#: Rows of ``_parsed`` (the batch being written) that may hold a secret.
_CANDIDATES = """
SELECT line_no, reason, raw, args::VARCHAR AS args, data::VARCHAR AS data, message,
       extra::VARCHAR AS extra
FROM _parsed
WHERE CASE WHEN reason IS NULL
           THEN regexp_matches(concat_ws(chr(10), args, data, message, extra), $pattern)
           ELSE regexp_matches(raw, $pattern) END
"""

_UPDATE = """
UPDATE _parsed SET args = r.args::JSON, data = r.data::JSON, message = r.message,
       extra = r.extra::JSON, raw = r.raw,
       raw_bytes = coalesce(_parsed.raw_bytes, strlen(_parsed.raw))  -- the line's size as read
FROM _redacted r
WHERE _parsed.line_no = r.line_no
"""


def redact_parsed(store: Any) -> dict[int, int]:
    """Redact the candidate rows of the temp table ``_parsed`` in place; returns the values
    redacted per line number (lines with none are left out).

    Called by ``toolctl.store.writer.write_line_batch`` inside the batch's transaction,
    before anything is inserted. Valid rows: args, data, message, unknown fields. Rejects:
    the raw text.
    """
    rules = rules_for(store)
    rows = store.fetch_dicts(_CANDIDATES, {"pattern": rules.candidate_pattern()})
    if not rows:
        return {}
    import pyarrow as pa

    red = Redactor(rules, store_salt(store))
    out = {"line_no": [], "raw": [], "args": [], "data": [], "message": [], "extra": []}
    per_line: dict[int, int] = {}
    for r in rows:
        before = red.count
        if r["reason"] is None:
            r["args"] = red.json_text(r["args"])
            r["data"] = red.json_text(r["data"])
            r["extra"] = red.json_text(r["extra"])
            r["message"] = None if r["message"] is None else red.loose_text(r["message"])
            r["raw"] = None  # the raw text of a valid line is not stored
        else:
            r["raw"] = red.raw_line(r["raw"])
        if red.count == before:
            continue  # a candidate with nothing to redact is stored as written
        per_line[r["line_no"]] = red.count - before
        for k in out:
            out[k].append(r[k])
    if red.count:
        table = pa.table({"line_no": pa.array(out["line_no"], pa.int64()),
                          **{k: pa.array(out[k], pa.string()) for k in out if k != "line_no"}})
        store.conn.register("_redacted", table)
        try:
            store.execute(_UPDATE).fetchall()
        finally:
            store.conn.unregister("_redacted")
    return per_line


#: Span columns holding JSON text / free text that may carry secrets.
SPAN_JSON_COLUMNS = ("resource", "attributes", "events", "links", "args", "result")
SPAN_TEXT_COLUMNS = ("status_message",)


def redact_span_tables(store: Any, spans: Any, rejects: Any) -> tuple[Any, Any, int]:
    """Redact decoded spans (Arrow, ``collector.otlp.COLUMNS``) and refused spans' raw text.

    Called by ``toolctl.store.spans.write_span_batch`` before the insert. Candidate rows
    are found per column with Arrow's RE2 ``match_substring_regex``; only those are
    decoded and fixed in Python. Returns (spans, rejects, values redacted).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    rules = rules_for(store)
    pattern = rules.candidate_pattern()
    red = Redactor(rules, store_salt(store))

    def fix(table: Any, column: str, how: Any) -> Any:
        if table is None or column not in table.column_names or table.num_rows == 0:
            return table
        col = table.column(column)
        if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
            col = pc.cast(col, pa.string())
        hits = pc.fill_null(pc.match_substring_regex(col, pattern), False)
        if not pc.any(hits).as_py():
            return table
        values = col.to_pylist()
        for i, hit in enumerate(hits.to_pylist()):
            if hit and values[i] is not None:
                values[i] = how(values[i])
        idx = table.column_names.index(column)
        return table.set_column(idx, column, pa.array(values, col.type))

    def any_candidate(table: Any, columns: tuple[str, ...]) -> bool:
        # One RE2 pass over the columns joined row by row: Arrow compiles the (large)
        # pattern once per call, ~2 ms, which per column dominated a serve burst.
        cols = [pc.fill_null(pc.cast(table.column(c), pa.string()), "")
                for c in columns if c in table.column_names]
        if not cols or table.num_rows == 0:
            return False
        joined = pc.binary_join_element_wise(*cols, "\n") if len(cols) > 1 else cols[0]
        return bool(pc.any(pc.match_substring_regex(joined, pattern)).as_py())

    if spans is not None and any_candidate(spans, SPAN_JSON_COLUMNS + SPAN_TEXT_COLUMNS):
        for c in SPAN_JSON_COLUMNS:
            spans = fix(spans, c, red.json_text)
        for c in SPAN_TEXT_COLUMNS:
            spans = fix(spans, c, red.loose_text)
    rejects = fix(rejects, "raw", red.raw_line)
    return spans, rejects, red.count
