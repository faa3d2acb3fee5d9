"""The alert webhook against a real HTTP server on 127.0.0.1: retried with backoff."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from netwarden.collector.policy.webhook import Webhook


class Flaky(ThreadingHTTPServer):
    """Answers 503 to the first ``failures`` POSTs, then 204; records every try."""

    def __init__(self, failures: int) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.failures = failures
        self.tries: list[tuple[float, dict[str, Any], str]] = []


class Handler(BaseHTTPRequestHandler):
    server: Flaky

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.tries.append((time.monotonic(), json.loads(body),
                                  self.headers["Content-Type"]))
        self.send_response(503 if len(self.server.tries) <= self.server.failures else 204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[Flaky]:
    server = Flaky(failures=2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def wait(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_fails_twice_then_delivered_with_growing_backoff(flaky: Flaky) -> None:
    url = f"http://127.0.0.1:{flaky.server_address[1]}/alerts"
    hook = Webhook(url, attempts=5, backoff_s=0.2)
    hook.start()
    try:
        began = time.monotonic()
        assert hook.send({"policy": "yt", "tier": 2})
        assert time.monotonic() - began < 0.1  # send never waits for the server
        wait(lambda: hook.delivered == 1)
    finally:
        hook.stop()
    assert [t[1] for t in flaky.tries] == [{"policy": "yt", "tier": 2}] * 3
    assert {t[2] for t in flaky.tries} == {"application/json"}
    gaps = [b[0] - a[0] for a, b in zip(flaky.tries, flaky.tries[1:], strict=False)]
    assert 0.2 <= gaps[0] < 0.4  # first backoff
    assert 0.4 <= gaps[1] < 0.7  # doubled
    assert hook.failed == 0


def test_gives_up_after_the_attempts_and_goes_on(flaky: Flaky) -> None:
    flaky.failures = 3
    url = f"http://127.0.0.1:{flaky.server_address[1]}/"
    hook = Webhook(url, attempts=2, backoff_s=0.05)
    hook.start()
    try:
        hook.send({"n": 1})
        hook.send({"n": 2})
        wait(lambda: hook.failed + hook.delivered == 2)
    finally:
        hook.stop()
    # n=1 failed twice (given up), n=2 failed once then was delivered
    assert [t[1]["n"] for t in flaky.tries] == [1, 1, 2, 2]
    assert (hook.failed, hook.delivered) == (1, 1)


def test_full_queue_drops_without_blocking() -> None:
    hook = Webhook("http://127.0.0.1:9/", queue_size=2)  # not started: nothing drains
    assert hook.send({"n": 1}) and hook.send({"n": 2})
    assert not hook.send({"n": 3})
    assert hook.dropped == 1
