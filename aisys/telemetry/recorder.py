"""Metrics and log events recorded off the caller's path, on one background thread.

A finished call is handed over as it is (its facts are final once its span ended), with
what only the caller's thread knows: its structlog context variables and the time it
ended. The thread records the call's metric points and writes its log event, in the
order calls ended. It starts with the first call (importing aisys starts no thread) and
wakes every `interval` seconds to record what accumulated — handing a call over is one
append, no system call, no thread switch per call — and `aisys.flush`, `aisys.shutdown`
and the interpreter's exit drain it at once.

Bounded without losing anything: when `max_pending` calls are waiting (the thread cannot
keep up, e.g. a tight loop holding the GIL), the calling thread records them itself, in
order, before it returns.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["Recorder"]

_log = logging.getLogger("aisys")


class _Flush:
    """A marker: everything queued before it has been recorded once it is set."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()
_RECORDERS: weakref.WeakSet[Recorder] = weakref.WeakSet()


def _after_fork() -> None:
    for recorder in list(_RECORDERS):
        recorder._forget_thread()


if hasattr(os, "register_at_fork"):  # once for all recorders: no reference kept alive
    os.register_at_fork(after_in_child=_after_fork)


class Recorder:
    """One daemon thread recording finished calls handed to `submit`, in order."""

    interval = 0.05
    """Seconds between the thread's rounds (a flush does not wait for the next one)."""

    def __init__(
        self, record: Callable[..., None], *, max_pending: int, timeout: float
    ) -> None:
        self._record = record
        self._max = max_pending
        self._timeout = timeout
        self._pending: deque[Any] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._draining = threading.Lock()
        """Held while recording: one thread at a time, so the order is kept."""
        self.helped = 0
        """Times a caller recorded the waiting calls itself (the thread fell behind)."""
        _RECORDERS.add(self)  # a forked child starts its own thread (`_after_fork`)

    def submit(self, *job: Any) -> None:
        """Hand over one finished call (arguments for the record function)."""
        if self._thread is None:
            self._start()
        pending = self._pending
        pending.append(job)
        if len(pending) >= self._max:  # the thread fell behind: record them here
            self.helped += 1
            self._drain(stop=False)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every call handed over so far is recorded; False on time-out."""
        if self._thread is None:
            return True
        marker = _Flush()
        self._pending.append(marker)
        self._wake.set()
        return marker.done.wait(self._timeout if timeout is None else timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Record what is waiting, then stop the thread (a later call starts it again)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return True
        ok = True
        if thread.is_alive():
            self._pending.append(_STOP)
            self._wake.set()
            thread.join(self._timeout if timeout is None else timeout)
            ok = not thread.is_alive()
        atexit.unregister(self.close)
        return ok

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(
                target=self._run, name="aisys-recorder", daemon=True
            )
            thread.start()
            self._thread = thread
        atexit.register(self.close)

    def _forget_thread(self) -> None:
        self._thread = None
        self._lock = threading.Lock()
        self._draining = threading.Lock()
        self._wake = threading.Event()
        self._pending = deque()

    def _run(self) -> None:
        wake = self._wake
        while True:
            wake.wait(self.interval)
            wake.clear()
            if self._drain(stop=True):
                return

    def _drain(self, *, stop: bool) -> bool:
        """Record everything waiting, in order; True when the thread is to stop.

        ``stop``: whether this is the thread (a caller helping leaves the stop to it).
        """
        pending, record = self._pending, self._record
        with self._draining:
            while pending:
                job = pending.popleft()
                if job is _STOP:
                    if stop:
                        return True
                    pending.appendleft(job)
                    self._wake.set()
                    return False
                if isinstance(job, _Flush):
                    job.done.set()
                    continue
                try:
                    record(*job)
                except Exception:  # a telemetry failure must not stop later records
                    _log.debug("aisys could not record a call", exc_info=True)
        return False
