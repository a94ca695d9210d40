"""Fixtures for the data tests: per-test nnU-Net folders under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def nnunet_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point nnUNet_raw / nnUNet_preprocessed / nnUNet_results into tmp_path for this test only."""
    dirs = {key: tmp_path / key for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for key, path in dirs.items():
        path.mkdir()
        monkeypatch.setenv(key, str(path))
    return dirs


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 serving registered paths, with Range support.

    Per path: ``body`` bytes, optional ``bearer`` token required, optional ``redirect`` target,
    optional ``truncate`` (send the full Content-Length but only this many bytes, then close) for
    the next ``truncate_times`` requests. Every request is logged as (path, headers).
    """

    def __init__(self) -> None:
        import http.server
        import threading

        self.routes: dict[str, dict[str, object]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                import urllib.parse

                path = urllib.parse.urlsplit(self.path).path
                server.requests.append((path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(path)
                if route is None:
                    return self._reply(404, b"not found")
                if route.get("forbid_auth") and self.headers.get("Authorization"):
                    return self._reply(400, b"credentials must not be forwarded to the storage host")
                token = route.get("bearer")
                if token and self.headers.get("Authorization") != f"Bearer {token}":
                    return self._reply(401, b"unauthorized")
                if route.get("redirect"):
                    self.send_response(307)
                    self.send_header("Location", str(route["redirect"]))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                body: bytes = route["body"]  # type: ignore[assignment]
                start, status = 0, 200
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start, status = int(rng[6:-1]), 206
                    if start >= len(body):
                        return self._reply(416, b"")
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if route.get("truncate_times", 0) > 0:  # type: ignore[operator]
                    route["truncate_times"] = int(route["truncate_times"]) - 1  # type: ignore[arg-type]
                    self.wfile.write(body[start:max(start, int(route["truncate"]))])  # type: ignore[arg-type]
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                self.wfile.write(body[start:])
                return None

            def _reply(self, code: int, payload: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def add(self, path: str, body: bytes = b"", **options: object) -> None:
        self.routes[path] = {"body": body, **options}

    def paths_requested(self) -> list[str]:
        return [p for p, _ in self.requests]


@pytest.fixture
def http_server():
    """A running :class:`LoopbackServer`, shut down after the test."""
    server = LoopbackServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)
