"""One structlog event per call, without touching the host's logging set-up.

When the host configured structlog, events flow through its processors. Otherwise aisys
renders them with its own small chain to the stdlib logger ``aisys``, which stays silent
until the application configures logging. The event is only built when someone listens.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import MutableMapping, MutableSequence
from typing import Any

import structlog

from aisys.settings import LogFormat

__all__ = ["EventLog"]

_STDLIB = logging.getLogger("aisys")


class EventLog:
    """Emits call events to structlog, to aisys's own chain, or to a capture list."""

    def __init__(
        self,
        log_format: LogFormat,
        sink: MutableSequence[dict[str, Any]] | None = None,
    ) -> None:
        self.sink = sink
        renderer: Any = (
            structlog.processors.JSONRenderer()
            if log_format == "json"
            else structlog.dev.ConsoleRenderer(colors=False)
        )
        self._own = structlog.wrap_logger(
            _STDLIB,
            processors=[
                structlog.processors.add_log_level,
                _stamp,
                renderer,
            ],
            wrapper_class=structlog.stdlib.BoundLogger,
        )

    def listening(self) -> bool:
        """Whether an event would reach anyone; building it is skipped otherwise."""
        return (
            self.sink is not None
            or structlog.is_configured()
            or _STDLIB.isEnabledFor(logging.INFO)
        )

    def emit(
        self,
        event: str,
        fields: dict[str, Any],
        *,
        failed: bool,
        at: float | None = None,
    ) -> None:
        """Send one event, at warning level for failed calls, info otherwise.

        ``at``: when the call ended (epoch seconds), for an event written later by the
        recorder; aisys's own renderer stamps it (a host's structlog chain stamps the
        time it writes the event, as its own processors decide).
        """
        if self.sink is not None:
            self.sink.append(
                {"event": event, "log_level": "warning" if failed else "info", **fields}
            )
            return
        if structlog.is_configured():
            logger: Any = structlog.get_logger("aisys")
        else:
            logger = self._own
            if at is not None:
                fields = {**fields, "timestamp": _iso(at)}
        if failed:
            logger.warning(event, **fields)
        else:
            logger.info(event, **fields)


def _iso(at: float) -> str:
    """``at`` as structlog's ISO time stamper writes it (UTC, ``Z``)."""
    moment = datetime.datetime.fromtimestamp(at, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stamp(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The event's time: when the call ended if given, else now (ISO 8601, UTC)."""
    event_dict.setdefault("timestamp", _iso(time.time()))
    return event_dict
