"""structlog for rillet: one line per lifecycle event, quiet until the user turns it on.

rillet logs through ``structlog.get_logger("rillet")`` with ``run_id``, ``run_name``, ``node`` and
``kind`` bound; chunks are never logged. Until :func:`configure_logging` enables it, every logger
is a no-op, so an application that never asked for rillet's lines neither sees nor pays for them.

>>> configure_logging(True)   # now lines go through the application's structlog configuration
>>> configure_logging(False)
"""

from __future__ import annotations

from typing import Protocol

import structlog

__all__ = ["Logger", "configure_logging", "get_logger", "logging_enabled"]

_enabled = False


class Logger(Protocol):
    """What rillet calls on a logger: structlog's bound loggers, or the quiet one."""

    def bind(self, **values: object) -> Logger: ...

    def debug(self, event: str, **values: object) -> object: ...

    def info(self, event: str, **values: object) -> object: ...

    def warning(self, event: str, **values: object) -> object: ...

    def error(self, event: str, **values: object) -> object: ...

    def exception(self, event: str, **values: object) -> object: ...


class _QuietLogger:
    """Accepts structlog's calls and does nothing; ``bind`` returns itself (no allocation)."""

    def bind(self, **_: object) -> _QuietLogger:
        return self

    def _ignore(self, *_: object, **__: object) -> None:
        return None

    debug = info = warning = error = exception = msg = _ignore


_QUIET = _QuietLogger()


def configure_logging(enabled: bool = True) -> None:
    """Turn rillet's lifecycle log lines on or off (off by default).

    Lines are rendered by the application's own structlog configuration; tests capture them
    with ``structlog.testing.capture_logs()``.
    """
    global _enabled
    _enabled = enabled


def logging_enabled() -> bool:
    return _enabled


def get_logger(**bound: object) -> Logger:
    """rillet's logger with ``bound`` key-values, or a no-op logger while logging is off."""
    if not _enabled:
        return _QUIET
    logger: Logger = structlog.get_logger("rillet").bind(**bound)
    return logger
