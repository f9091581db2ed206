"""When a periodic task runs: a cron expression or a fixed interval, as ticks on the clock."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from trellis.exceptions import ConfigurationError

__all__ = ["Schedule"]


class Schedule:
    """The ticks of a periodic task: a cron expression or an interval.

    Every process computes the same ticks from the clock alone, so a backend that several
    workers share can agree on which tick a job belongs to and run it once.

    Args:
        spec: A cron expression (``"*/5 * * * *"``; a sixth field counts seconds:
            ``"* * * * * */10"``), or an interval (``timedelta(minutes=5)`` or seconds as a
            number). Interval ticks are aligned on the clock: every 5 minutes means at :00,
            :05, :10 ..., not 5 minutes after start-up.
        tz: The time zone a cron expression is read in (a name such as ``"Europe/Paris"`` or a
            ``tzinfo``); UTC by default. Intervals do not depend on it.

    Raises:
        ConfigurationError: The expression or the interval is not valid, or cron expressions
            are used without ``croniter`` installed.
    """

    __slots__ = ("cron", "interval", "tz")

    def __init__(self, spec: str | timedelta | float, *, tz: str | tzinfo | None = None) -> None:
        self.tz: tzinfo = _zone(tz)
        self.cron: str | None = None
        self.interval: float | None = None
        if isinstance(spec, str):
            croniter = _croniter()
            if not croniter.is_valid(spec):
                raise ConfigurationError(
                    f"{spec!r} is not a cron expression: write five fields (minute hour day "
                    "month weekday, such as '*/5 * * * *'), or six with seconds last"
                )
            self.cron = spec
        elif isinstance(spec, timedelta | int | float) and not isinstance(spec, bool):
            seconds = spec.total_seconds() if isinstance(spec, timedelta) else float(spec)
            if not math.isfinite(seconds) or seconds <= 0:
                raise ConfigurationError(f"a periodic interval must be positive, not {spec!r}")
            self.interval = seconds
        else:
            raise ConfigurationError(
                f"a schedule is a cron string or an interval (timedelta or seconds), not {spec!r}"
            )

    @classmethod
    def of(cls, value: Schedule | str | timedelta | float) -> Schedule:
        """``value`` if it is a schedule already, else a schedule made from it."""
        return value if isinstance(value, Schedule) else cls(value)

    def next_after(self, when: float) -> float:
        """The first tick strictly after ``when`` (both in seconds since the epoch)."""
        if self.interval is not None:
            return (math.floor(when / self.interval) + 1) * self.interval
        assert self.cron is not None
        start = datetime.fromtimestamp(when, self.tz)
        return float(_croniter()(self.cron, start).get_next(float))

    def __repr__(self) -> str:
        if self.cron is not None:
            zone = "" if self.tz is UTC else f", tz={self.tz}"
            return f"Schedule({self.cron!r}{zone})"
        return f"Schedule({timedelta(seconds=self.interval or 0)!r})"


def _zone(tz: str | tzinfo | None) -> tzinfo:
    if tz is None:
        return UTC
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"{tz!r} is not a known time zone") from None


def _croniter() -> Any:
    try:
        from croniter import croniter
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ConfigurationError(
            "cron schedules need croniter: pip install 'trellis[tasks]' (or use an interval, "
            "such as timedelta(minutes=5))"
        ) from None
    return croniter
