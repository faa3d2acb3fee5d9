"""Alert webhook: HTTP POST of a JSON body, retried with exponential backoff.

:class:`Webhook` owns one background thread and a bounded queue: :meth:`Webhook.send`
never blocks (a full queue drops the alert, logged and counted). Each alert is POSTed
(``Content-Type: application/json``) until the server answers 2xx or ``attempts`` tries
failed; between tries the thread waits ``backoff_s``, doubling up to ``backoff_max_s``.
Delivery is in order; a failing alert delays the ones behind it.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import urllib.error
import urllib.request
from typing import Any

from netwarden.logging import get_logger

__all__ = ["Webhook"]

log = get_logger("netwarden.collector.policy")


class Webhook:
    """Component style: inert constructor, :meth:`start`, :meth:`stop`."""

    def __init__(self, url: str, *, attempts: int = 5, backoff_s: float = 1.0,
                 backoff_max_s: float = 60.0, timeout_s: float = 10.0,
                 queue_size: int = 1000) -> None:
        self.url = url
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.timeout_s = timeout_s
        self.delivered = 0
        self.failed = 0  # alerts given up after every attempt
        self.dropped = 0  # alerts refused because the queue was full
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="policy-webhook",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop retrying and end the thread (alerts still queued are dropped)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        thread.join(timeout_s)

    def send(self, payload: dict[str, Any]) -> bool:
        """Queue ``payload`` for delivery; False when the queue is full (dropped)."""
        try:
            self._queue.put_nowait(payload)
            return True
        except queue.Full:
            self.dropped += 1
            log.warning("policy webhook queue full: alert dropped", url=self.url,
                        policy=payload.get("policy"))
            return False

    def idle(self) -> bool:
        """Whether nothing is waiting (for tests and shutdown)."""
        return self._queue.unfinished_tasks == 0

    def _run(self) -> None:
        while not self._stop.is_set():
            payload = self._queue.get()
            try:
                if payload is not None:
                    self._deliver(payload)
            finally:
                self._queue.task_done()

    def _deliver(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, sort_keys=True).encode()
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            error = self._post(body)
            if error is None:
                self.delivered += 1
                return
            if attempt == self.attempts:
                break
            log.warning("policy webhook failed; retrying", url=self.url, attempt=attempt,
                        error=error, retry_in_s=delay)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self.backoff_max_s)
        self.failed += 1
        log.error("policy webhook gave up", url=self.url, attempts=self.attempts,
                  policy=payload.get("policy"), error=error)

    def _post(self, body: bytes) -> str | None:
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                status = int(reply.status)
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return str(getattr(exc, "reason", exc))
        return None if 200 <= status < 300 else f"HTTP {status}"
