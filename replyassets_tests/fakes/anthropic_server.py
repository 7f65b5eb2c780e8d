"""A loopback HTTP server that speaks enough of the Anthropic Messages API for tests.

Use it with the real ``anthropic`` client::

    with FakeAnthropicServer(responder=my_fn) as srv:
        client = anthropic.Anthropic(base_url=srv.base_url, api_key="test")
        ...
        srv.requests  # every request received, parsed

``responder(body: dict) -> str | dict`` decides the assistant text (a ``str``) or the whole
response object (a ``dict``) from the parsed request body. Faults are queued with
``inject(kind, times)`` and consumed one per request, before the responder runs:

- ``"429"``, ``"529"``, ``"500"``, ``"503"``: an error status with an Anthropic error body
  and ``retry-after-ms`` (``retry_after_ms``, small so tests stay fast);
- ``"hang"``: hold the request without answering (until ``hang_seconds`` pass or the server
  stops), so the client's timeout fires;
- ``"reset"``: close the TCP connection with an RST before answering;
- ``"malformed_json"``: HTTP 200 with ``application/json`` content that is not JSON;
- ``"401"``: an authentication error (not retryable).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], "str | dict[str, Any]"]

FAULT_KINDS = ("429", "529", "500", "503", "401", "hang", "reset", "malformed_json")

_ERROR_TYPES = {
    429: "rate_limit_error",
    529: "overloaded_error",
    500: "api_error",
    503: "api_error",
    401: "authentication_error",
}


def default_responder(body: dict[str, Any]) -> str:
    """A neutral judge: a tie for a comparison, 5 for a single score."""
    text = json.dumps(body.get("messages", []))
    if "reply_a" in text:
        return '{"winner": "tie", "reason": "default fake verdict"}'
    return '{"score": 5, "reason": "default fake score"}'


class FakeAnthropicServer:
    def __init__(
        self,
        responder: Responder | None = None,
        *,
        retry_after_ms: int = 10,
        hang_seconds: float = 30.0,
        model_echo: bool = True,
    ) -> None:
        self.responder = responder or default_responder
        self.retry_after_ms = retry_after_ms
        self.hang_seconds = hang_seconds
        self.model_echo = model_echo
        self.requests: list[dict[str, Any]] = []
        self.faults_served: list[str] = []
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    # ------------------------------------------------------------------ control
    def inject(self, kind: str, times: int = 1) -> FakeAnthropicServer:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        with self._lock:
            self._faults.extend([kind] * times)
        return self

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def message_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == "/v1/messages"]

    def start(self) -> FakeAnthropicServer:
        handler = self._make_handler()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeAnthropicServer:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals
    def _next_fault(self) -> str | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _next_id(self) -> str:
        with self._lock:
            self._counter += 1
            return f"msg_fake_{self._counter:06d}"

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def finish(self) -> None:
                try:
                    super().finish()
                except OSError:
                    pass

            def _send_json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", f"req_fake_{time.monotonic_ns()}")
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = None
                fault = fake._next_fault()
                entry = {
                    "path": self.path.split("?", 1)[0],
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                    "fault": fault,
                    "time": time.time(),
                }
                with fake._lock:
                    fake.requests.append(entry)
                    if fault:
                        fake.faults_served.append(fault)
                if entry["path"] != "/v1/messages":
                    self._send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": "not found"}})
                    return
                if fault is not None:
                    self._serve_fault(fault)
                    return
                if not isinstance(body, dict) or "messages" not in body or "model" not in body:
                    self._send_json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "bad body"}})
                    return
                try:
                    out = fake.responder(body)
                except Exception as exc:  # noqa: BLE001 - a broken responder is a 500, visible in the test
                    self._send_json(500, {"type": "error", "error": {"type": "api_error", "message": repr(exc)}},
                                    {"x-should-retry": "false"})
                    return
                if isinstance(out, dict):
                    payload = out
                else:
                    text = str(out)
                    payload = {
                        "id": fake._next_id(),
                        "type": "message",
                        "role": "assistant",
                        "model": body.get("model", "fake") if fake.model_echo else "fake",
                        "content": [{"type": "text", "text": text}],
                        "stop_reason": "end_turn",
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": max(1, len(json.dumps(body)) // 4),
                            "output_tokens": max(1, len(text) // 4),
                        },
                    }
                self._send_json(200, payload)

            def _serve_fault(self, fault: str) -> None:
                if fault.isdigit():
                    status = int(fault)
                    self._send_json(
                        status,
                        {"type": "error", "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": f"fake {status}"}},
                        {"retry-after-ms": str(fake.retry_after_ms)},
                    )
                elif fault == "hang":
                    fake._stop.wait(fake.hang_seconds)
                    self.close_connection = True
                elif fault == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    self.connection.close()
                elif fault == "malformed_json":
                    self._send_json(200, b'{"id": "msg_broken", "type": "message", "content": [')

        return Handler
