"""One structlog event per call, without touching the host's logging set-up.

When the host configured structlog, events flow through its processors. Otherwise aisys
renders them with its own small chain to the stdlib logger ``aisys``, which stays silent
until the application configures logging. The event is only built when someone listens.
"""

from __future__ import annotations

import logging
from collections.abc import MutableSequence
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
                structlog.processors.TimeStamper(fmt="iso", utc=True),
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

    def emit(self, event: str, fields: dict[str, Any], *, failed: bool) -> None:
        """Send one event, at warning level for failed calls, info otherwise."""
        if self.sink is not None:
            self.sink.append(
                {"event": event, "log_level": "warning" if failed else "info", **fields}
            )
            return
        logger: Any = (
            structlog.get_logger("aisys") if structlog.is_configured() else self._own
        )
        if failed:
            logger.warning(event, **fields)
        else:
            logger.info(event, **fields)
