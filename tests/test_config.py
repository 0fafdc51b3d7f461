"""toolctl.toml: where it is found, precedence flag > environment > file > default, validation.

Real subprocesses: exit codes and the working directory are part of the contract.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_toolctl, write_jsonl
from tests.test_collector_server import serve  # noqa: F401 (fixture)


def _show(*args, cwd, env=None):
    r = run_toolctl(*args, "config", "show", "--format", "json", cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    return doc, {k: (v["value"], v["source"]) for k, v in doc["settings"].items()}


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def dirs(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    user = tmp_path / "xdg-config" / "toolctl"  # conftest points XDG_CONFIG_HOME here
    return work, user


def test_without_any_file_every_setting_is_its_built_in_default(dirs, tmp_path):
    work, _ = dirs
    doc, s = _show(cwd=work)
    assert doc["config_file"] is None
    assert s["store.path"] == (str(tmp_path / "xdg-data" / "toolctl" / "toolctl.duckdb"), "default")
    assert s["gate.runbook"] == ("canary-promotion", "default")
    assert s["collector.url"] == (None, "default")


def test_store_path_precedence_is_flag_then_env_then_file_then_default(dirs, tmp_path):
    work, _ = dirs
    cfg = _write(work / "toolctl.toml", '[store]\npath = "data/cfg.duckdb"\n')
    source = f"config file {cfg}"
    _, s = _show(cwd=work)
    assert s["store.path"] == (str(work / "data" / "cfg.duckdb"), source)  # relative to the file
    _, s = _show(cwd=work, env={"TOOLCTL_DB": str(tmp_path / "env.duckdb")})
    assert s["store.path"] == (str(tmp_path / "env.duckdb"), "$TOOLCTL_DB")
    _, s = _show("--db", tmp_path / "flag.duckdb", cwd=work, env={"TOOLCTL_DB": str(tmp_path / "env.duckdb")})
    assert s["store.path"] == (str(tmp_path / "flag.duckdb"), "--db")
    # and the commands use it: `db path`, and an ingest creates the configured file
    assert run_toolctl("db", "path", cwd=work).stdout.strip() == str(work / "data" / "cfg.duckdb")
    r = run_toolctl("ingest", write_jsonl(work / "a.jsonl", [{"event_id": "e1", "ts": "2026-11-24T06:00:00Z",
                                                              "tool": "t", "status": "ok", "latency_ms": 1.0}]),
                    cwd=work)
    assert r.returncode == 0, r.stderr
    assert (work / "data" / "cfg.duckdb").exists()


def test_the_file_is_found_by_flag_then_env_then_working_directory_then_user_dir(dirs, tmp_path):
    work, user = dirs
    _write(user / "toolctl.toml", '[gate]\nrunbook = "latency-slo"\n')
    doc, s = _show(cwd=work)
    assert doc["config_file_origin"] == "user config dir" and s["gate.runbook"][0] == "latency-slo"
    _write(work / "toolctl.toml", '[gate]\nrunbook = "retry-storm"\n')
    doc, s = _show(cwd=work)
    assert doc["config_file_origin"] == "working directory" and s["gate.runbook"][0] == "retry-storm"
    via_env = _write(tmp_path / "env.toml", '[gate]\nrunbook = "error-budget"\n')
    doc, s = _show(cwd=work, env={"TOOLCTL_CONFIG": str(via_env)})
    assert doc["config_file"] == str(via_env) and s["gate.runbook"][0] == "error-budget"
    via_flag = _write(tmp_path / "flag.toml", '[gate]\nrunbook = "auth-mismatch"\n')
    doc, s = _show("--config", via_flag, cwd=work, env={"TOOLCTL_CONFIG": str(via_env)})
    assert doc["config_file_origin"] == "--config" and s["gate.runbook"][0] == "auth-mismatch"
    # the environment variable of the setting still beats any file
    _, s = _show("--config", via_flag, cwd=work, env={"TOOLCTL_RUNBOOK": "schema-breakage"})
    assert s["gate.runbook"] == ("schema-breakage", "$TOOLCTL_RUNBOOK")


def test_gate_reads_its_default_runbook_from_the_file(dirs):
    work, _ = dirs
    _write(work / "toolctl.toml", '[gate]\nrunbook = "no-such-runbook"\n')
    r = run_toolctl("--db", work / "s.duckdb", "gate", "--baseline", "a", "--candidate", "b", cwd=work)
    assert r.returncode != 0 and "no-such-runbook" in r.stderr
    ok = run_toolctl("--db", work / "s.duckdb", "gate", "--baseline", "a", "--candidate", "b",
                     "--runbook", "canary-promotion", "--format", "json", cwd=work)
    assert json.loads(ok.stdout)["runbook"] == "canary-promotion"  # the flag wins


def test_ingest_applies_the_redaction_rules_the_file_names(dirs):
    work, _ = dirs
    _write(work / "rules.toml", '[redaction]\n[[redaction.patterns]]\nname = "employee"\nregex = "EMP-[0-9]{6}"\n')
    _write(work / "toolctl.toml", '[redaction]\nrules = "rules.toml"\n[store]\npath = "s.duckdb"\n')
    line = {"event_id": "e1", "ts": "2026-11-24T06:00:00Z", "tool": "t", "status": "error",
            "latency_ms": 1.0, "error_code": "X", "message": "badge EMP-123456 refused"}
    assert run_toolctl("ingest", write_jsonl(work / "a.jsonl", [line]), cwd=work).returncode == 0
    rows = json.loads(run_toolctl("audit", "search", "--format", "json", cwd=work).stdout)
    assert "EMP-123456" not in rows[0]["message"] and "[REDACTED:employee:" in rows[0]["message"]


@pytest.mark.parametrize("text, where, what", [
    ('[store]\npath = "a"\n\n[stor]\npath = "b"\n', ":4:", "stor: unknown setting"),
    ('[store]\npath = "a"\npth = "b"\n', ":3:", "store.pth: unknown setting"),
    ('[collector]\nurl = 5\n', ":2:", "collector.url"),
    ('[collector]\nurl = "ftp://x"\n', ":2:", "collector.url"),
    ('[store\npath = "a"\n', "line 1", "not valid TOML"),
    # Found by fuzzing: each was a traceback, or (NUL) a store under another name.
    ('[store]\npath = "a\\u0000b"\n', ":2:", "cannot contain a NUL"),
    ("x = " + "[" * 3000 + "]" * 3000 + "\n", "", "nested too deeply"),
    (b"[store]\npath = \"\xff\"\n", ":2:", "not UTF-8"),
    # after a byte-order mark the line was counted 3 bytes short (line 1 here, or up to 3 lines early)
    (b"\xef\xbb\xbf[store]\n\n\n\xff\n", ":4:", "not UTF-8"),
])
def test_an_invalid_file_is_exit_2_naming_file_line_and_setting(dirs, text, where, what):
    work, _ = dirs
    cfg = _write(work / "toolctl.toml", text)
    r = run_toolctl("db", "path", cwd=work)
    assert r.returncode == 2 and r.stdout == ""
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"Error: {cfg}") and where in first and what in first, r.stderr
    assert r.stderr.splitlines()[1].startswith("Hint: ")


def test_a_file_saved_with_a_byte_order_mark_is_read(dirs):
    # Windows editors (Notepad, PowerShell's Out-File) save UTF-8 with a BOM; it was "not valid TOML".
    work, _ = dirs
    _write(work / "toolctl.toml", b'\xef\xbb\xbf[store]\npath = "bom.duckdb"\n')
    _, s = _show(cwd=work)
    assert s["store.path"] == (str(work / "bom.duckdb"), f"config file {work / 'toolctl.toml'}")


@pytest.mark.parametrize("url", ["ftp://x", "collector.internal:4318", "http://", "http://exa mple"])
def test_a_malformed_collector_url_in_the_environment_is_exit_2_as_in_the_file(dirs, url):
    # The file's collector.url was checked (exit 2); $TOOLCTL_URL went to the network and
    # came back as "does not answer /healthz", exit 1: a typo looked like an outage.
    work, _ = dirs
    r = run_toolctl("stats", cwd=work, env={"TOOLCTL_URL": url})
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("Error: $TOOLCTL_URL") and "not an http(s):// URL" in r.stderr


# Each passed the URL pattern and reached httpx, which raised InvalidURL: a traceback, exit 1.
# (re.match's `$` also matches before a final newline, which a CI variable may well carry.)
_PASSED_THE_PATTERN = ["http://x:abc", "http://[::1", "http://::1:4318", "http://x\n", "http://x:65536",
                       "http://:4318"]
#: Valid http(s) URLs: RFC 3986 schemes are case-insensitive; IPv6 literals; a path prefix.
_VALID = ["HTTP://127.0.0.1:4318", "Https://collector.internal", "http://[::1]:4318", "http://[::1]",
          "https://collector.internal:8443/toolctl/", "http://u:p@10.0.0.1:4318"]


@pytest.mark.parametrize("url", _PASSED_THE_PATTERN)
def test_a_collector_url_httpx_cannot_parse_is_exit_2_from_the_environment_or_the_file(dirs, monkeypatch, url):
    from toolctl.config import load_settings
    from toolctl.errors import UsageError

    work, _ = dirs
    monkeypatch.chdir(work)
    monkeypatch.setenv("TOOLCTL_URL", url)
    with pytest.raises(UsageError, match=r"^\$TOOLCTL_URL: not an http\(s\):// URL"):
        load_settings()
    monkeypatch.delenv("TOOLCTL_URL")
    cfg = _write(work / "toolctl.toml", "[collector]\nurl = " + json.dumps(url) + "\n")
    with pytest.raises(UsageError, match=rf"^{cfg}:2: collector.url: not an http\(s\):// URL"):
        load_settings()


def test_an_unparseable_collector_url_is_a_usage_error_not_a_traceback(dirs):
    work, _ = dirs
    r = run_toolctl("stats", cwd=work, env={"TOOLCTL_URL": "http://collector.internal:43l8"})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("Error: $TOOLCTL_URL: not an http(s):// URL") and len(r.stderr.splitlines()) == 2


@pytest.mark.parametrize("url", _VALID)
def test_a_valid_collector_url_is_taken_from_the_environment_and_the_file(dirs, monkeypatch, url):
    from toolctl.config import load_settings

    work, _ = dirs
    monkeypatch.chdir(work)
    monkeypatch.setenv("TOOLCTL_URL", url)
    assert load_settings().values["collector.url"].value == url
    monkeypatch.delenv("TOOLCTL_URL")
    _write(work / "toolctl.toml", f'[collector]\nurl = "{url}"\n')
    assert load_settings().values["collector.url"].value == url


def test_a_missing_file_named_by_flag_or_env_is_exit_2(dirs, tmp_path):
    work, _ = dirs
    r = run_toolctl("--config", tmp_path / "nope.toml", "db", "path", cwd=work)
    assert r.returncode == 2 and "nope.toml (from --config) does not exist" in r.stderr
    r = run_toolctl("db", "path", cwd=work, env={"TOOLCTL_CONFIG": str(tmp_path / "gone.toml")})
    assert r.returncode == 2 and "$TOOLCTL_CONFIG" in r.stderr


def test_an_unreachable_configured_collector_is_an_error_not_a_silent_fallback(dirs):
    from tests.test_collector_server import free_port

    work, _ = dirs
    _write(work / "toolctl.toml", f'[collector]\nurl = "http://127.0.0.1:{free_port()}"\n')
    r = run_toolctl("--db", work / "s.duckdb", "db", "info", cwd=work)
    assert r.returncode == 1 and "does not answer" in r.stderr and "toolctl.toml" in r.stderr


@pytest.mark.slow
def test_commands_reach_the_configured_collector_by_url_and_token_file(dirs, serve, tmp_path):
    work, _ = dirs
    s = serve(env={"TOOLCTL_TOKEN": "s3cret"})
    assert s.post("/v1/tool-calls", b'{"event_id":"e1","ts":"2026-11-24T06:00:00Z","tool":"t",'
                  b'"status":"ok","latency_ms":1.0}\n', {"Content-Type": "application/x-ndjson"},
                  token="s3cret").status_code == 200
    _write(work / "token", "s3cret\n")
    _write(work / "toolctl.toml", f'[collector]\nurl = "{s.url}"\ntoken_file = "token"\n')
    # --db names another (non-existent) file: the answer can only come from the collector
    r = run_toolctl("--db", tmp_path / "elsewhere.duckdb", "db", "info", "--format", "json", cwd=work)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tables"]["events"] == 1
    assert json.loads(r.stdout)["path"] == str(s.db)
    _write(work / "toolctl.toml", f'[collector]\nurl = "{s.url}"\n')
    refused = run_toolctl("--db", tmp_path / "elsewhere.duckdb", "db", "info", cwd=work)
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr
    assert s.stop() == 0


@pytest.mark.slow
def test_serve_requires_the_token_of_the_configured_token_file(dirs, serve, tmp_path):
    """`config show` reports collector.token_file from toolctl.toml, and docs/config.md names
    `toolctl serve --token-file` as its flag: serve must require that token, not accept
    anyone's writes."""
    work, _ = dirs
    _write(work / "token", "s3cret\n")
    cfg = _write(work / "toolctl.toml", '[collector]\ntoken_file = "token"\n')
    s = serve(env={"TOOLCTL_CONFIG": str(cfg)})
    line = (b'{"event_id":"e1","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok",'
            b'"latency_ms":1.0}\n')
    assert s.post("/v1/tool-calls", line, {"Content-Type": "application/x-ndjson"}).status_code == 401
    assert s.post("/v1/tool-calls", line, {"Content-Type": "application/x-ndjson"},
                  token="s3cret").status_code == 200
    assert s.stop() == 0


def test_an_empty_config_flag_is_a_usage_error_not_a_quiet_fallback(dirs, tmp_path):
    """`--config "$UNSET"` must not silently read ./toolctl.toml (as `--db ""` does not
    silently mean the per-user store)."""
    work, _ = dirs
    _write(work / "toolctl.toml", f'[store]\npath = "{tmp_path / "other.duckdb"}"\n')
    r = run_toolctl("--config", "", "config", "show", cwd=work)
    assert r.returncode == 2 and "--config is empty" in r.stderr, (r.returncode, r.stdout, r.stderr)


@pytest.mark.parametrize("text, message", [
    ("[collector]\nurl = 5\n", "toolctl.toml:2: collector.url: must be a string, not an integer"),
    ('[collector]\nurl = "collector:4318"\n', "toolctl.toml:2: collector.url: not an http(s):// URL"),
    ('store = "x.duckdb"\n', "toolctl.toml:1: store: must be a [section] table of settings"),
    ('[store]\npath = ""\n', "toolctl.toml:2: store.path: must not be empty"),
])
def test_a_wrong_value_is_named_in_the_words_of_the_file_not_of_the_validator(dirs, text, message):
    """The operator wrote TOML: the error says what the value must be, not a pydantic class
    name or a regular expression."""
    work, _ = dirs
    _write(work / "toolctl.toml", text)
    r = run_toolctl("config", "show", cwd=work)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert "Section" not in r.stderr and "pattern" not in r.stderr and len(r.stderr.splitlines()) == 2
