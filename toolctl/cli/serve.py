"""`toolctl serve`: the live OTLP/HTTP collector for this store."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from toolctl.cli._sizes import size_option

DEFAULT_HOST = "127.0.0.1"  # mirrors collector.server (not imported: it pulls in the stack)
DEFAULT_PORT = 4318


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind. Non-loopback needs a token.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="Port (4318 is OTLP/HTTP's; 0 picks a free one).", min=0, max=65535)] = DEFAULT_PORT,
    token_file: Annotated[Optional[str], typer.Option(help="File holding the bearer token (else $TOOLCTL_TOKEN).")] = None,
    max_body_bytes: Annotated[int, size_option(1024, 16 * 1024 * 1024, "Largest request body, compressed and decompressed (413 above).")] = 16 * 1024 * 1024,
    max_line_bytes: Annotated[int, size_option(1, 1024 * 1024, "Longest accepted JSON line.")] = 1024 * 1024,
    queue_max_items: Annotated[int, typer.Option(help="Requests waiting for the writer before 503.", min=1)] = 1024,
    queue_max_bytes: Annotated[int, size_option(1, 256 * 1024 * 1024, "Bodies waiting for the writer before 503.")] = 256 * 1024 * 1024,
    lake: Annotated[Optional[str], typer.Option("--lake", metavar="DIR", help="Also append stored rows to this Parquet lake. The store stays: it stages rows (2xx = stored) and its ledger proves the lake's files; keep it small with `toolctl db prune` once rows are in the lake (docs/lake.md).")] = None,
    lake_flush_seconds: Annotated[float, typer.Option(help="Seconds the lake may lag the store (rows are batched into files meanwhile).", min=0.0)] = 1.0,
    decode_workers: Annotated[int, typer.Option(help="Worker processes that decode /v1/traces requests (0: the server's threads do).", min=0, max=64)] = 0,
) -> None:
    """Receive OTLP/HTTP traces and logs and JSON lines into the store; serve reads while running.

    Example: TOOLCTL_TOKEN=s3cret toolctl serve --host 0.0.0.0 --port 4318
    """
    import os
    import signal
    import socket
    import sys

    from toolctl.errors import StoreBusyError, ToolctlError, UsageError
    from toolctl.remote import find_server, load_token

    # --token-file > $TOOLCTL_TOKEN > $TOOLCTL_TOKEN_FILE > toolctl.toml's collector.token_file
    token = load_token(token_file or ctx.obj.setting("collector.token_file"))
    if not _is_loopback(host) and not token:
        raise UsageError(f"refusing to bind {host} without a token: anyone who can reach it could write to the store",
                         hint="set TOOLCTL_TOKEN, pass --token-file or set collector.token_file, or bind 127.0.0.1")
    db_path = ctx.obj.db_path
    running = find_server(db_path)
    if running:
        raise StoreBusyError(f"store {db_path} is already served by pid {running.pid} at {running.url}",
                             hint="send data to that collector, or stop it first")
    lake_dir = None
    if lake is not None:
        from pathlib import Path

        from toolctl.lake.layout import open_lake

        lake_dir = Path(lake).expanduser().resolve()
        open_lake(lake_dir, create=True)  # a bad lake fails here, before anything is accepted
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ToolctlError(f"cannot listen on {host}:{port}: {exc.strerror}",
                           hint="pick another --port, or stop what is using it") from exc
    sock.listen(2048)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host.strip('[]')}]" if family == socket.AF_INET6 else host

    import uvicorn

    from collector.server import ServerConfig, create_app

    rules = _redaction_rules(ctx)  # a bad rules file fails before the store is opened
    store = ctx.obj.open_write()
    store.redaction_rules = rules
    url = f"http://{shown_host}:{bound_port}"
    config = ServerConfig(db_path=db_path, token=token, max_body_bytes=max_body_bytes,
                          max_line_bytes=max_line_bytes, queue_max_items=queue_max_items,
                          queue_max_bytes=queue_max_bytes, url=url, lake=lake_dir,
                          lake_flush_seconds=lake_flush_seconds, decode_workers=decode_workers)
    app = create_app(store, config)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=30, access_log=False))
    # uvicorn re-raises the signal it stopped on after restoring the previous handlers;
    # handlers that do nothing make SIGTERM/SIGINT a clean exit 0 after the drain.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    sys.stderr.write(f"toolctl serve: {url} → {db_path}{f' + lake {lake_dir}' if lake_dir else ''} (pid {os.getpid()}"
                     f"{', token required' if token else ''})\n")
    sys.stderr.flush()
    server.run(sockets=[sock])
    if not server.started:
        raise ToolctlError(f"the collector on {url} failed to start", hint="see the messages above")
    sys.stderr.write("toolctl serve: stopped; every acknowledged request is stored\n")


def _redaction_rules(ctx: typer.Context):
    """The rules everything the collector stores is redacted with: $TOOLCTL_REDACTION_RULES,
    else toolctl.toml's redaction.rules, else the built-in ones (as `toolctl ingest`)."""
    from toolctl.audit.redact import load_rules, rules_path

    return load_rules(rules_path(ctx.obj.setting("redaction.rules")))
