"""A loopback HTTP server that speaks the Apify API as ``apify-client`` 3.4 uses it.

Routes (all under ``/v2``, all require ``Authorization: Bearer <token>``, else 401):

- ``POST /v2/actors/{user~name}/runs`` (also ``/v2/acts/...``): starts a run of the actor with
  the JSON body as its input; replies 201 ``{"data": Run}``. Query params ``maxItems`` and
  ``timeout`` are honoured/recorded. A gzip-compressed body (the client compresses bodies of
  1 KiB or more) is accepted.
- ``GET /v2/actor-runs/{id}?waitForFinish=N``: ``{"data": Run}``; the run is ``RUNNING`` for its
  first ``running_polls`` polls and, with ``run_latency_s``, until that many seconds have passed
  since it started, then terminal. Like Apify, the request waits up to ``N`` seconds (at most 60)
  for the run to finish before it answers (only for the time-based latency: polls answer at once).
- ``GET /v2/datasets/{id}/items?offset=&limit=``: the bare JSON list of the run's items with the
  ``X-Apify-Pagination-Total/-Offset/-Count/-Limit/-Desc`` headers.
- ``POST /v2/actor-runs/{id}/abort``: marks the run ``ABORTED``.
- ``GET /v2/users/me``: ``{"data": {"id", "username"}}`` (a cheap connection check).

Scripting the data (what a run's dataset holds is decided from its input's ``searchTerms``):

    with FakeApifyServer(token="t") as api:
        api.add_search("ai agents", tweets)          # a search term -> items
        api.add_replies("1790000000000000000", replies)  # "conversation_id:<id>" -> items
        client = ApifyClient("t", api_url=api.url)

A search term matches a registered search when, with the Twitter search operators removed
(``min_faves:``, ``min_retweets:``, ``lang:``, ``-filter:``, ``since:``, ...), it equals the
registered text (whitespace collapsed). ``resolver=`` replaces this with any function
``run_input -> list[item]``. The actor honours ``maxItems`` (the smaller of the input's and the
query param's) unless ``honor_max_items=False`` (an actor that overshoots).

Actor-run latency: ``FakeApifyServer(run_latency_s=3.0)`` keeps every run ``RUNNING`` for 3 s of
wall-clock time (a real tweet-scraper run takes tens of seconds to minutes), so a collection spends
its time waiting as it does in production; the attribute can be changed between runs. Default 0:
runs finish at once. ``run_gate=lambda run: ...`` (a function of the :class:`RecordedRun`) holds
every run RUNNING until it returns true as well (a barrier: e.g. "until runs of two queries are in
flight", which shows parallel collection without any timing assumption).

Fault injection, consumed in order, per route (``"start"``, ``"wait"``, ``"items"``, ``"user"``
or ``"*"`` for any route); each fault applies to ``times`` successive requests:

    api.inject("start", Fault.status(429), times=2)   # 429 twice, then normal
    api.inject("items", Fault.status(503), times=99)  # until the client gives up
    api.inject("wait", Fault.hang(5.0))               # sleeps past the client's timeout
    api.inject("items", Fault.reset())                # TCP RST, no response
    api.inject("start", Fault.malformed())            # 200/201 with a truncated JSON body
    api.fail_runs(2, status="FAILED")                 # the next 2 runs end FAILED, empty dataset
    api.inject("items", Fault.passthrough(), times=3) # let 3 requests through, then the next fault

Everything received is in ``api.requests`` (:class:`RecordedRequest`, no token kept: only
whether the bearer token matched) and every run in ``api.runs`` (:class:`RecordedRun`).
``api.faults_served`` counts faults actually delivered.
"""

from __future__ import annotations

import gzip
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

ROUTES = ("start", "wait", "items", "abort", "user")
TERMINAL_STATUSES = ("SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED")
_OPERATOR_RE = re.compile(
    r"(?:^|\s)-?(?:min_faves|min_retweets|min_replies|lang|filter|since|until|since_id|max_id|"
    r"conversation_id|from|to|within_time)\:\S+",
    re.IGNORECASE,
)


def strip_operators(term: str) -> str:
    """The search text of ``term`` without Twitter search operators, whitespace collapsed."""
    return " ".join(_OPERATOR_RE.sub(" ", term).split())


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_id() -> str:
    return uuid.uuid4().hex[:17]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour. Build with the class methods."""

    kind: str  # status | hang | reset | malformed | pass
    status_code: int = 0
    hang_s: float = 0.0
    body: str = ""

    @classmethod
    def passthrough(cls) -> Fault:
        """No fault: serve the request normally (lets N requests through before later faults)."""
        return cls("pass")

    @classmethod
    def status(cls, code: int, body: str | None = None) -> Fault:
        """Reply with HTTP ``code`` and an Apify-style error body (429, 500, 502, 503, 401, ...)."""
        if body is None:
            kind = "rate-limit-exceeded" if code == 429 else "internal-error" if code >= 500 else "error"
            body = json.dumps({"error": {"type": kind, "message": f"fake server injected HTTP {code}"}})
        return cls("status", status_code=code, body=body)

    @classmethod
    def hang(cls, seconds: float = 5.0) -> Fault:
        """Accept the request, then say nothing for ``seconds`` (past the client's timeout), then close."""
        return cls("hang", hang_s=seconds)

    @classmethod
    def reset(cls) -> Fault:
        """Read the request, then reset the TCP connection (RST) without any response."""
        return cls("reset")

    @classmethod
    def malformed(cls, body: str | None = None) -> Fault:
        """A success status with a body that is not valid JSON."""
        return cls("malformed", body=body if body is not None else '{"data": {"id": "trunc')


@dataclass
class RecordedRequest:
    method: str
    path: str
    route: str | None
    query: dict[str, str]
    body: Any
    authorized: bool
    fault: str | None = None  # the fault kind served, if any


@dataclass
class RecordedRun:
    id: str
    actor: str  # "user/name" as the client addressed it
    run_input: Any
    params: dict[str, str]
    status: str
    dataset_id: str
    items: list[Any]
    final_status: str
    polls: int = 0
    ready_at: float = 0.0  # time.monotonic() from which the run may end (run_latency_s)
    started_at: str = field(default_factory=_now_iso)
    finished_at: str | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class FakeApifyServer:
    """A scriptable fake of the Apify API on 127.0.0.1. Use as a context manager; ``url`` is the
    base URL to give ``ApifyClient(token, api_url=url)`` (the client appends ``/v2``)."""

    def __init__(
        self,
        token: str = "fake-apify-token",
        *,
        resolver: Callable[[Any], Iterable[Any]] | None = None,
        honor_max_items: bool = True,
        running_polls: int = 0,
        run_latency_s: float = 0.0,
        run_gate: Callable[[RecordedRun], bool] | None = None,
        user_id: str = "fakeUser0000000001",
    ) -> None:
        if run_latency_s < 0:
            raise ValueError("run_latency_s must be >= 0")
        self.token = token
        self.resolver = resolver
        self.honor_max_items = honor_max_items
        self.running_polls = running_polls
        self.run_latency_s = float(run_latency_s)
        self.run_gate = run_gate
        self.user_id = user_id
        self.searches: dict[str, list[Any]] = {}
        self.replies: dict[str, list[Any]] = {}
        self.requests: list[RecordedRequest] = []
        self.runs: dict[str, RecordedRun] = {}
        self.datasets: dict[str, list[Any]] = {}
        self.faults_served: int = 0
        self._faults: dict[str, deque[Fault]] = {r: deque() for r in (*ROUTES, "*")}
        self._failing_runs: deque[str] = deque()
        self._lock = threading.RLock()
        self._release = threading.Event()  # set on stop(): wakes hanging handlers
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeApifyServer is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeApifyServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._release.clear()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-apify", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ scripting

    def add_search(self, text: str, items: Iterable[Any]) -> None:
        """Items a run returns for a search term whose text (operators removed) is ``text``."""
        with self._lock:
            self.searches.setdefault(strip_operators(text), []).extend(items)

    def add_replies(self, conversation_id: str, items: Iterable[Any]) -> None:
        """Items a run returns for the search term ``conversation_id:<conversation_id>``."""
        with self._lock:
            self.replies.setdefault(str(conversation_id), []).extend(items)

    def inject(self, route: str, fault: Fault, times: int = 1) -> None:
        """Serve ``fault`` to the next ``times`` requests of ``route`` (or ``"*"``: any route)."""
        if route not in self._faults:
            raise ValueError(f"unknown route {route!r}; one of {(*ROUTES, '*')}")
        with self._lock:
            self._faults[route].extend([fault] * times)

    def fail_runs(self, times: int = 1, status: str = "FAILED") -> None:
        """The next ``times`` runs started end with ``status`` (FAILED, ABORTED, TIMED-OUT)."""
        if status not in TERMINAL_STATUSES or status == "SUCCEEDED":
            raise ValueError(f"status must be one of FAILED, ABORTED, TIMED-OUT, not {status!r}")
        with self._lock:
            self._failing_runs.extend([status] * times)

    def clear_faults(self) -> None:
        with self._lock:
            for q in self._faults.values():
                q.clear()
            self._failing_runs.clear()

    # ------------------------------------------------------------------ inspection

    def requests_for(self, route: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.route == route]

    def run_inputs(self) -> list[Any]:
        """The inputs of every run started, in order."""
        return [r.run_input for r in self.runs.values()]

    def items_served(self) -> int:
        """Items returned by successful dataset item requests."""
        return sum(
            len(r.body) for r in self.requests if r.route == "items" and r.fault is None and isinstance(r.body, list)
        )

    # ------------------------------------------------------------------ internals

    def _next_fault(self, route: str) -> Fault | None:
        with self._lock:
            for key in (route, "*"):
                if self._faults[key]:
                    fault = self._faults[key].popleft()
                    if fault.kind == "pass":
                        return None
                    self.faults_served += 1
                    return fault
        return None

    def _resolve(self, run_input: Any) -> list[Any]:
        if self.resolver is not None:
            return list(self.resolver(run_input))
        terms = run_input.get("searchTerms") if isinstance(run_input, dict) else None
        if not isinstance(terms, list):
            return []
        out: list[Any] = []
        for term in terms:
            if not isinstance(term, str):
                continue
            conv = re.search(r"conversation_id:(\S+)", term)
            if conv:
                out.extend(self.replies.get(conv.group(1), []))
            else:
                out.extend(self.searches.get(strip_operators(term), []))
        return out

    def _start_run(self, actor: str, run_input: Any, params: dict[str, str]) -> RecordedRun:
        items = self._resolve(run_input)
        caps = []
        if isinstance(run_input, dict) and isinstance(run_input.get("maxItems"), int):
            caps.append(run_input["maxItems"])
        if params.get("maxItems", "").isdigit():
            caps.append(int(params["maxItems"]))
        if caps and self.honor_max_items:
            items = items[: min(caps)]
        with self._lock:
            final = self._failing_runs.popleft() if self._failing_runs else "SUCCEEDED"
            if final != "SUCCEEDED":
                items = []
            latency = self.run_latency_s
            run = RecordedRun(
                id=_new_id(),
                actor=actor,
                run_input=run_input,
                params=params,
                status="RUNNING" if self.running_polls or latency > 0 or self.run_gate else final,
                dataset_id=_new_id(),
                items=items,
                final_status=final,
                ready_at=time.monotonic() + latency,
            )
            if run.status in TERMINAL_STATUSES:
                run.finished_at = _now_iso()
            self.runs[run.id] = run
            self.datasets[run.dataset_id] = items
        return run

    def _poll_run(self, run: RecordedRun, wait_s: float = 0.0) -> None:
        """Count one poll; end the run when its polls and its latency are both used up. When only
        the latency is left, wait for it up to ``wait_s`` seconds (Apify's ``waitForFinish``)."""
        with self._lock:
            run.polls += 1
            polls_done = run.polls >= self.running_polls
        deadline = time.monotonic() + max(0.0, wait_s)
        gate = self.run_gate
        while True:
            with self._lock:
                if run.status in TERMINAL_STATUSES or not polls_done:
                    return
                now = time.monotonic()
                opened = gate is None or bool(gate(run))
                if now >= run.ready_at and opened:
                    run.status = run.final_status
                    run.finished_at = _now_iso()
                    return
                until = run.ready_at if now < run.ready_at else now + 0.05  # a closed gate: look again soon
                pause = min(until, deadline) - now
            if pause <= 0 or self._release.wait(pause):
                return

    def run_json(self, run: RecordedRun) -> dict[str, Any]:
        """The Run object with every field ``apify-client`` validates."""
        timeout = int(run.params["timeout"]) if run.params.get("timeout", "").isdigit() else 3600
        return {
            "id": run.id,
            "actId": "fakeActor" + run.actor.replace("/", "_")[:8],
            "userId": self.user_id,
            "startedAt": run.started_at,
            "finishedAt": run.finished_at,
            "status": run.status,
            "statusMessage": {"SUCCEEDED": "Finished", "RUNNING": "Running"}.get(run.status, run.status.lower()),
            "meta": {"origin": "API", "userAgent": "fake"},
            "stats": {"inputBodyLen": len(json.dumps(run.run_input)), "restartCount": 0, "computeUnits": 0.0},
            "options": {
                "build": "latest",
                "timeoutSecs": timeout,
                "memoryMbytes": 1024,
                "diskMbytes": 2048,
                **({"maxItems": int(run.params["maxItems"])} if run.params.get("maxItems", "").isdigit() else {}),
            },
            "buildId": "fakeBuild00000001",
            "exitCode": 0 if run.status == "SUCCEEDED" else (1 if run.status in TERMINAL_STATUSES else None),
            "defaultKeyValueStoreId": "kvs" + run.id[:14],
            "defaultDatasetId": run.dataset_id,
            "defaultRequestQueueId": "rq" + run.id[:15],
        }


class _Handler(BaseHTTPRequestHandler):
    fake: FakeApifyServer
    protocol_version = "HTTP/1.1"
    server_version = "FakeApify/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    # -- plumbing

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if raw and (self.headers.get("Content-Encoding") or "").lower() == "gzip":
            raw = gzip.decompress(raw)
        return raw

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None, raw: str | None = None) -> None:
        body = (raw if raw is not None else json.dumps(payload)).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _route(self, method: str, path: str) -> tuple[str | None, dict[str, str]]:
        m = re.fullmatch(r"/v2/act(?:or)?s/([^/]+)/runs", path)
        if method == "POST" and m:
            return "start", {"actor": unquote(m.group(1)).replace("~", "/")}
        m = re.fullmatch(r"/v2/actor-runs/([^/]+)", path)
        if method == "GET" and m:
            return "wait", {"run": m.group(1)}
        m = re.fullmatch(r"/v2/actor-runs/([^/]+)/abort", path)
        if method == "POST" and m:
            return "abort", {"run": m.group(1)}
        m = re.fullmatch(r"/v2/datasets/([^/]+)/items", path)
        if method == "GET" and m:
            return "items", {"dataset": m.group(1)}
        if method == "GET" and path == "/v2/users/me":
            return "user", {}
        return None, {}

    def _handle(self, method: str) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        raw = self._read_body()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        route, ids = self._route(method, parts.path)
        authorized = self.headers.get("Authorization") == f"Bearer {fake.token}"
        rec = RecordedRequest(method, parts.path, route, query, body, authorized)
        with fake._lock:
            fake.requests.append(rec)

        if route is None:
            self._send(404, {"error": {"type": "page-not-found", "message": f"no route {method} {parts.path}"}})
            return
        if not authorized:
            self._send(401, {"error": {"type": "token-not-valid", "message": "Authentication token is not valid."}})
            return
        fault = fake._next_fault(route)
        if fault is not None:
            rec.fault = fault.kind
            self._serve_fault(fault)
            return

        if route == "start":
            run = fake._start_run(ids["actor"], body, query)
            self._send(201, {"data": fake.run_json(run)})
        elif route in ("wait", "abort"):
            run = fake.runs.get(ids["run"])
            if run is None:
                self._send(404, {"error": {"type": "record-not-found", "message": "Actor run was not found"}})
                return
            if route == "abort":
                with fake._lock:
                    if run.status not in TERMINAL_STATUSES:
                        run.status = run.final_status = "ABORTED"
                        run.finished_at = _now_iso()
            else:
                wait = query.get("waitForFinish", "")
                fake._poll_run(run, min(float(wait), 60.0) if wait.replace(".", "", 1).isdigit() else 0.0)
            self._send(200, {"data": fake.run_json(run)})
        elif route == "items":
            items = fake.datasets.get(ids["dataset"])
            if items is None:
                self._send(404, {"error": {"type": "record-not-found", "message": "Dataset was not found"}})
                return
            offset = int(query.get("offset") or 0)
            limit = int(query.get("limit") or 0)
            page = items[offset : offset + limit] if limit > 0 else items[offset:]
            rec.body = page
            self._send(
                200,
                page,
                headers={
                    "X-Apify-Pagination-Total": str(len(items)),
                    "X-Apify-Pagination-Offset": str(offset),
                    "X-Apify-Pagination-Count": str(len(page)),
                    "X-Apify-Pagination-Limit": str(limit if limit > 0 else 999999999999),
                    "X-Apify-Pagination-Desc": "false",
                },
            )
        elif route == "user":
            self._send(200, {"data": {"id": fake.user_id, "username": "fake-user"}})

    def _serve_fault(self, fault: Fault) -> None:
        if fault.kind == "status":
            self._send(fault.status_code, None, raw=fault.body)
        elif fault.kind == "malformed":
            self._send(201 if self.command == "POST" else 200, None, raw=fault.body)
        elif fault.kind == "hang":
            self.fake._release.wait(fault.hang_s)
            self.close_connection = True
            self._hard_close(reset=False)
        elif fault.kind == "reset":
            self.close_connection = True
            self._hard_close(reset=True)
        else:  # pragma: no cover - guarded by the Fault constructors
            raise ValueError(fault.kind)

    def _hard_close(self, *, reset: bool) -> None:
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR) if not reset else None
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self) -> None:
        self._safe(lambda: self._handle("GET"))

    def do_POST(self) -> None:
        self._safe(lambda: self._handle("POST"))

    def _safe(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
