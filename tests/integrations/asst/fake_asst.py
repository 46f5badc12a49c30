"""A fake ASST FHIR server: real HTTP on 127.0.0.1 (a free port), in a thread. It records every request it
receives (path, headers, JSON body) and answers from a script of outcomes, then with `default`:

    fake.script(500, 500)      # the next two requests fail with 500, then the default (200)
    fake.script("timeout")     # the next request is held past the client's timeout, then answered 200
    fake.script("hang")        # the next request is held until `release()` (a worker is killed meanwhile)
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic() when it arrived

    @property
    def key(self) -> str | None:
        return self.headers.get("x-idempotency-key")


class FakeAsst:
    def __init__(self, *, timeout_hold_seconds: float = 3.0):
        self.received: list[Received] = []
        self.default: int = 200
        self._script: deque = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.timeout_hold_seconds = timeout_hold_seconds
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                with fake._lock:
                    fake.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                  body, time.monotonic()))
                    outcome = fake._script.popleft() if fake._script else fake.default
                if outcome == "hang":
                    fake._release.wait(60)
                    outcome = fake.default
                elif outcome == "timeout":
                    time.sleep(fake.timeout_hold_seconds)
                    outcome = fake.default
                payload = json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": []}
                                     if outcome < 300 else {"resourceType": "OperationOutcome", "issue": [
                                         {"severity": "error", "code": "exception"}]}).encode()
                try:
                    self.send_response(outcome)
                    self.send_header("Content-Type", "application/fhir+json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout, killed)
                    pass

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeAsst:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def script(self, *outcomes) -> None:
        with self._lock:
            self._script.extend(outcomes)

    def release(self) -> None:
        self._release.set()

    def keys(self) -> list[str | None]:
        with self._lock:
            return [r.key for r in self.received]
