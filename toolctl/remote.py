"""Reaching a running ``toolctl serve``: its discovery file and an HTTP client.

DuckDB lets one process hold a store file. While ``toolctl serve`` holds it, the server
writes ``<store>.serve.json`` (pid, url) next to the store, atomically, and removes it on
exit. Read commands look for that file first: if its pid is alive and ``/healthz``
answers, the read operation is sent to the server (``POST /api/v1/read/{operation}``),
which runs the same library function on its connection. A stale file (dead pid, no
answer) is ignored.

The token for a protected collector comes from ``TOOLCTL_TOKEN`` (or the file named by
``TOOLCTL_TOKEN_FILE``); it is never written to the discovery file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from toolctl.errors import RemoteError, UsageError

TOKEN_ENV = "TOOLCTL_TOKEN"
TOKEN_FILE_ENV = "TOOLCTL_TOKEN_FILE"
#: Bytes of JSON lines sent per forwarded request (below the server's default body limit).
FORWARD_CHUNK_BYTES = 4 * 1024 * 1024


def discovery_path(db_path: Path) -> Path:
    """Where the server serving ``db_path`` announces itself: next to the file itself, so a
    store reached through a symbolic link (``current.duckdb`` → ``2026-12.duckdb``) or by
    another relative path finds the server that holds it."""
    try:
        db_path = db_path.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop: the path as given
        pass
    return db_path.with_name(db_path.name + ".serve.json")


def write_discovery(db_path: Path, *, url: str, pid: int | None = None) -> Path:
    """Announce a server for ``db_path`` (write to a temp file, then rename: atomic)."""
    path = discovery_path(db_path)
    doc = {"pid": pid or os.getpid(), "url": url, "db": str(db_path)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def remove_discovery(db_path: Path, *, pid: int | None = None) -> None:
    """Remove the discovery file if it is ours (another server may have replaced it)."""
    path = discovery_path(db_path)
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return
    if doc.get("pid") == (pid or os.getpid()):
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def load_token(token_file: str | os.PathLike | None = None) -> str | None:
    """The bearer token: ``token_file`` if given, else $TOOLCTL_TOKEN, else $TOOLCTL_TOKEN_FILE."""
    if token_file is None and os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip() or None
    token_file = token_file or os.environ.get(TOKEN_FILE_ENV)
    if not token_file:
        return None
    try:
        token = Path(token_file).expanduser().read_text("utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read token file {token_file}: {exc.strerror}",
                         hint="pass a readable file containing the token") from exc
    except UnicodeDecodeError:  # a bearer token is text: this is some other file
        raise UsageError(f"token file {token_file} is not UTF-8 text",
                         hint="put the bearer token, as text, in the file") from None
    if not token:
        raise UsageError(f"token file {token_file} is empty", hint="put the bearer token in the file")
    return token


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


@dataclass
class ServerInfo:
    url: str
    pid: int
    token: str | None = None  # from the configuration (else RemoteStore reads the environment)
    #: the collector's redaction rules (``Rules.fingerprint``; None from a toolctl that did not say)
    redaction: str | None = None


def find_server(db_path: Path, *, timeout: float = 2.0) -> ServerInfo | None:
    """The live server serving ``db_path``, or None (no file, dead pid, no /healthz answer)."""
    path = discovery_path(db_path)
    try:
        doc = json.loads(path.read_text("utf-8"))
        info = ServerInfo(url=str(doc["url"]).rstrip("/"), pid=int(doc["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _pid_alive(info.pid):
        return None
    import httpx

    try:
        resp = httpx.get(info.url + "/healthz", timeout=timeout)
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    try:
        health = resp.json()
        same = health.get("pid") == info.pid  # not another process reusing the port
    except (ValueError, AttributeError):
        return None
    return replace(info, redaction=_text_or_none(health.get("redaction"))) if same else None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def find_server_at(url: str, *, origin: str = "collector.url", timeout: float = 5.0) -> ServerInfo:
    """The server at a configured URL (its pid from /healthz). Raises RemoteError when it
    does not answer: a configured collector is never silently replaced by the local file."""
    import httpx

    url = url.rstrip("/")
    try:
        resp = httpx.get(url + "/healthz", timeout=timeout)
        health = resp.json() if resp.status_code == 200 else {}
        pid = int(health["pid"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        pid = None
    if pid is None:
        raise RemoteError(f"collector at {url} (from {origin}) does not answer /healthz",
                          hint="start `toolctl serve` there, or unset the collector URL to use the store file")
    return ServerInfo(url=url, pid=pid, redaction=_text_or_none(health.get("redaction")))


def dumps(doc: Any) -> bytes:
    """JSON for the wire, rendering values as ``toolctl ... --format json`` does."""
    from toolctl.jsonio import dumps as render

    return render(doc)


class RemoteStore:
    """Stands in for a read-only Store while a server holds the file.

    Only operations registered in ``toolctl.api`` can run through it; SQL cannot.
    """

    read_only = True

    def __init__(self, info: ServerInfo, db_path: Path, *, timeout: float = 300.0,
                 token: str | None = None):
        import httpx

        self.info = info
        self.path = db_path
        token = token or info.token or load_token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=info.url, headers=headers, timeout=timeout)

    def __enter__(self) -> "RemoteStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _fail(self, what: str, resp: Any) -> RemoteError:
        try:
            detail = resp.json().get("message") or resp.text
        except ValueError:
            detail = resp.text
        hint = ("set TOOLCTL_TOKEN to the collector's token" if resp.status_code == 401
                else "larger than the collector's --max-body-bytes: raise it, or stop the collector "
                     "and run the command again to read the file directly" if resp.status_code == 413
                else "check the collector's log")
        return RemoteError(f"collector at {self.info.url} (pid {self.info.pid}) refused {what}: "
                           f"HTTP {resp.status_code}: {detail.strip()[:300]}", hint=hint)

    def _post(self, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            return self._client.post(path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteError(
                f"collector at {self.info.url} (pid {self.info.pid}) serving {self.path} "
                f"did not answer: {exc}",
                hint="check that `toolctl serve` is still running, or stop it to read the file directly",
            ) from exc

    def call(self, kind: str, operation: str, request: Any) -> Any:
        """Run a registered operation of ``toolctl.api`` on the server (``kind``: read, or
        write: through its writer queue); returns its JSON result."""
        body = request.model_dump_json().encode("utf-8")
        resp = self._post(f"/api/v1/{kind}/{operation}", content=body,
                          headers={"Content-Type": "application/json"})
        if resp.status_code == 400:
            doc = resp.json()
            from toolctl import errors
            from toolctl.audit import ledger

            name = doc.get("error_class", "")
            cls = getattr(errors, name, None) or getattr(ledger, name, None)  # keeps exit 5
            if isinstance(cls, type) and issubclass(cls, errors.ToolctlError):
                raise cls(doc.get("message", ""), hint=doc.get("hint"))
            if name and isinstance(doc.get("exit_code"), int):
                # Raised by a module this command did not import (an unknown id, a lake, a
                # baseline): the same message, hint and exit code as a local run.
                exc = errors.ToolctlError(doc.get("message", ""), hint=doc.get("hint"))
                exc.exit_code = doc["exit_code"]
                raise exc
        if resp.status_code != 200:
            raise self._fail(f"{kind} operation {operation!r}", resp)
        return resp.json()["result"]

    def send_lines(self, data: bytes, *, source: str, first_line: int, kind: str,
                   max_line_bytes: int | None = None, input_error: str | None = None) -> dict:
        """POST JSON lines to ``/v1/tool-calls``; returns lines/accepted/duplicates/rejected.
        ``input_error``: instead, the reject line at ``first_line`` of a source that broke off."""
        return self._send("/v1/tool-calls", data, f"lines {first_line}+ of {source}", {
            "Content-Type": "application/x-ndjson", "X-Toolctl-Source": source,
            "X-Toolctl-First-Line": first_line, "X-Toolctl-Kind": kind,
            "X-Toolctl-Max-Line-Bytes": max_line_bytes, "X-Toolctl-Input-Error": input_error})

    def send_otlp_file(self, data: bytes, *, fmt: str, source: str, kind: str,
                       first_line: int | None = None, broken: str | None = None) -> dict:
        """POST an OTLP file (or, with ``first_line``, a part of a one-request-per-line
        file) to ``/api/v1/ingest-otlp``; returns spans/duplicates/tool_calls/rejected."""
        what = source if first_line is None else f"lines {first_line}+ of {source}"
        return self._send("/api/v1/ingest-otlp", data, what, {
            "Content-Type": "application/octet-stream", "X-Toolctl-Format": fmt,
            "X-Toolctl-Source": source, "X-Toolctl-Kind": kind,
            "X-Toolctl-First-Line": first_line, "X-Toolctl-Input-Error": broken})

    def _send(self, path: str, data: bytes, what: str, headers: dict[str, Any]) -> dict:
        """POST ``data`` with the headers that have a value (as header-safe text); the JSON answer."""
        sent = {k: _header_safe(str(v)) for k, v in headers.items() if v is not None}
        resp = self._post(path, content=data, headers=sent)
        if resp.status_code != 200:
            raise self._fail(what, resp)
        return resp.json()

    def record_source(self, **done: Any) -> None:
        """Note a fully sent source (path, sha256, counts) as a local ingest does."""
        resp = self._post("/api/v1/ingest-source", content=dumps(done),
                          headers={"Content-Type": "application/json"})
        if resp.status_code != 200:
            raise self._fail(f"the record of {done.get('source')}", resp)

    # Anything that would run SQL here means a command is not routed through toolctl.api.
    def _not_remote(self, *args: Any, **kwargs: Any) -> Any:
        raise RemoteError(
            f"this command cannot run while `toolctl serve` (pid {self.info.pid}) holds {self.path}",
            hint="stop the collector (SIGTERM) and run it again",
        )

    fetch_dicts = row = scalar = execute = _not_remote

    @property
    def conn(self) -> Any:
        return self._not_remote()


#: Printable ASCII but ``%``: kept as is in a header; everything else is percent-encoded.
_HEADER_SAFE_CHARS = "".join(chr(c) for c in range(0x20, 0x7f) if chr(c) != "%")


def _header_safe(text: str) -> str:
    """``text`` as a header value the server decodes back exactly (``forwarded_text`` in
    collector/server.py): a source path may hold any character, non-ASCII and newlines included."""
    from urllib.parse import quote

    return quote(text, safe=_HEADER_SAFE_CHARS, errors="surrogateescape")


def chunk_lines(stream: Any, chunk_bytes: int = FORWARD_CHUNK_BYTES) -> Iterator[tuple[int, bytes]]:
    """Split a byte stream into (first line number, bytes) chunks that end at a newline."""
    line = 1
    carry = b""
    while True:
        data = stream.read(chunk_bytes)
        if not data:
            break
        buf = carry + data
        cut = buf.rfind(b"\n")
        if cut < 0:
            carry = buf  # one line longer than a chunk: keep reading until it ends
            continue
        chunk, carry = buf[:cut + 1], buf[cut + 1:]
        yield line, chunk
        line += chunk.count(b"\n")
    if carry:
        yield line, carry
