"""toolctl.jsonio: one rendering for --format json and the collector's read API."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np

from toolctl import jsonio
from toolctl.api import jsonable
from toolctl.remote import dumps as wire_dumps

DOC = {
    "tool": "suche_web_🔍",
    "naive_utc": datetime(2026, 11, 1, 12, 30, 0, 250),
    "aware": datetime(2026, 11, 1, 14, 30, tzinfo=timezone(timedelta(hours=2))),
    "day": date(2026, 11, 1),
    "age": timedelta(minutes=90),
    "rate": Decimal("0.125"),
    "float_sum": 0.1 + 0.2,
    "tiny": -1e-300,
    "big_float": 1e16,
    "u64": 2**64 - 1,
    "i64": -(2**63),
    "np_float": np.float64(2.5),
    "np_int": np.int64(7),
    "np_array": np.array([1.0, 2.0]),
    "nan": float("nan"),
    "inf": float("inf"),
    "nested": [{"k": (1, 2)}, None, True],
    3: "non-string key",
}
EXPECTED = {
    "tool": "suche_web_🔍",
    "naive_utc": "2026-11-01T12:30:00.000250Z",
    "aware": "2026-11-01T14:30:00+02:00",
    "day": "2026-11-01",
    "age": "1:30:00",
    "rate": 0.125,
    "float_sum": 0.30000000000000004,
    "tiny": -1e-300,
    "big_float": 1e16,
    "u64": 2**64 - 1,
    "i64": -(2**63),
    "np_float": 2.5,
    "np_int": 7,
    "np_array": [1.0, 2.0],
    "nan": None,
    "inf": None,
    "nested": [{"k": [1, 2]}, None, True],
    "3": "non-string key",
}


def test_values_json_has_no_type_for_render_by_the_documented_rules():
    out = jsonio.dumps(DOC)
    assert json.loads(out) == EXPECTED
    assert "🔍".encode() in out  # UTF-8, not \u escapes


def test_cli_and_wire_render_the_same_bytes():
    assert wire_dumps(DOC) == jsonio.dumps(DOC)
    assert jsonable(DOC) == EXPECTED


def test_integers_beyond_64_bits_stay_exact_with_the_same_rules():
    doc = dict(DOC, huge=2**70, neg_huge=-(2**64) - 5)
    out = jsonio.dumps(doc)
    got = json.loads(out)
    assert got["huge"] == 2**70 and got["neg_huge"] == -(2**64) - 5
    assert got == dict(EXPECTED, huge=2**70, neg_huge=-(2**64) - 5)  # NaN still null, etc.
    back = jsonable(doc)
    assert back["huge"] == 2**70 and isinstance(back["huge"], int)


def test_read_back_is_exact_for_everything_written():
    values = [2**64 - 1, -(2**63), 0.1 + 0.2, 5e-324, 1.7976931348623157e308, "\u0000\u2028"]
    back = jsonable(values)
    assert back == values
    assert all(type(a) is type(b) for a, b in zip(back, values))
    assert not any(isinstance(v, float) and math.isnan(v) for v in back)


def test_print_json_writes_one_document_and_a_newline_after_earlier_text():
    code = ("import sys; from toolctl.cli._output import print_json, print_jsonl; "
            "sys.stdout.write('text first\\n'); print_json({'a': 1, 'b': 'ü'}); "
            "print_jsonl([{'n': 1}, {'n': 2}])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    lines = out.decode("utf-8").splitlines()
    assert lines[0] == "text first"
    assert json.loads(lines[1]) == {"a": 1, "b": "ü"}
    assert [json.loads(x) for x in lines[2:]] == [{"n": 1}, {"n": 2}]
