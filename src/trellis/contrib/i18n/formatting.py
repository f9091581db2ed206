"""Numbers, money, dates and times written the way the current locale writes them.

Every function takes an optional ``locale`` (default: the request's, from ``trellis.i18n``) and
the date and time functions an optional ``tzinfo`` (default: the request's time zone, see
``get_timezone``). Aware datetimes are converted to that zone; naive ones are taken as UTC
(store UTC, show local time). The I18n plugin offers each function as a Jinja2 filter of the
same name: ``{{ price|format_currency("EUR") }}``, ``{{ post.published|format_datetime }}``.

Example:
    ```python
    import datetime
    from decimal import Decimal

    from trellis.contrib.i18n import format_currency, format_date, format_decimal

    assert format_decimal(1234.5, locale="en") == "1,234.5"
    assert format_decimal(2.5, locale="fr") == "2,5"
    assert format_currency(Decimal("9.90"), "USD", locale="en") == "$9.90"
    assert format_date(datetime.date(2024, 7, 14), locale="en") == "Jul 14, 2024"
    ```
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import dates as _dates
from babel import numbers as _numbers

from trellis.i18n import get_locale

__all__ = [
    "UTC",
    "format_currency",
    "format_date",
    "format_datetime",
    "format_decimal",
    "format_number",
    "format_percent",
    "format_time",
    "format_timedelta",
    "get_timezone",
    "set_timezone",
    "to_user_timezone",
    "to_utc",
    "zone",
]

UTC: _dt.tzinfo = _dt.UTC

Number = int | float | decimal.Decimal | str
DateFormat = Literal["full", "long", "medium", "short"] | str

_timezone: contextvars.ContextVar[_dt.tzinfo | None] = contextvars.ContextVar(
    "trellis.i18n.timezone", default=None
)


def zone(name: str) -> _dt.tzinfo:
    """The time zone called ``name`` (an IANA name such as ``"Europe/Paris"``, or ``"UTC"``).

    Raises:
        ValueError: No time zone has that name.
    """
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris'"
        ) from None


def get_timezone() -> _dt.tzinfo:
    """The current request's time zone (``I18n(timezone=...)`` or the user's), else UTC."""
    tz = _timezone.get()
    return UTC if tz is None else tz


def set_timezone(tz: _dt.tzinfo | str | None) -> Any:
    """Make ``tz`` the current time zone (the I18n plugin does it per request).

    Returns:
        A token for ``_timezone.reset`` (the plugin's business; scripts rarely need it).
    """
    return _timezone.set(zone(tz) if isinstance(tz, str) else tz)


def _tz(tzinfo: _dt.tzinfo | str | None) -> _dt.tzinfo:
    if tzinfo is None:
        return get_timezone()
    return zone(tzinfo) if isinstance(tzinfo, str) else tzinfo


def _locale(locale: str | None) -> str:
    return get_locale() if locale is None else locale


def to_user_timezone(value: _dt.datetime, tzinfo: _dt.tzinfo | str | None = None) -> _dt.datetime:
    """``value`` in the user's time zone (a naive ``value`` is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(_tz(tzinfo))


def to_utc(value: _dt.datetime, tzinfo: _dt.tzinfo | str | None = None) -> _dt.datetime:
    """``value`` as an aware UTC datetime; a naive ``value`` is taken as the user's local time.

    Use it on what users type into forms ("meet at 14:00" means 14:00 where they are).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=_tz(tzinfo))
    return value.astimezone(UTC)


def format_number(number: Number, locale: str | None = None) -> str:
    """``1234567`` as ``1,234,567`` (en) or ``1 234 567`` (fr), with the decimals given."""
    return _numbers.format_decimal(number, locale=_locale(locale))


def format_decimal(number: Number, format: str | None = None, locale: str | None = None) -> str:
    """A number with the locale's separators; ``format`` is a CLDR pattern (``"#,##0.00"``)."""
    return _numbers.format_decimal(number, format=format, locale=_locale(locale))


def format_currency(
    number: Number,
    currency: str,
    format: str | None = None,
    locale: str | None = None,
    *,
    format_type: Literal["name", "standard", "accounting"] = "standard",
) -> str:
    """An amount of ``currency`` (an ISO 4217 code): ``$1,234.50``, ``1 234,50 €``."""
    return _numbers.format_currency(
        number, currency, format=format, locale=_locale(locale), format_type=format_type
    )


def format_percent(number: Number, format: str | None = None, locale: str | None = None) -> str:
    """A ratio as a percentage: ``0.25`` as ``25%`` (en) or ``25 %`` (fr)."""
    return _numbers.format_percent(number, format=format, locale=_locale(locale))


def format_date(
    value: _dt.date | None = None,
    format: DateFormat = "medium",
    locale: str | None = None,
    *,
    tzinfo: _dt.tzinfo | str | None = None,
) -> str:
    """A date (``"short"``, ``"medium"``, ``"long"``, ``"full"`` or a CLDR pattern).

    A ``datetime`` is first moved to the user's time zone, so the day shown is theirs.
    ``value`` defaults to today in that zone.
    """
    if value is None:
        value = _dt.datetime.now(_tz(tzinfo)).date()
    elif isinstance(value, _dt.datetime):
        value = to_user_timezone(value, tzinfo).date()
    return _dates.format_date(value, format=format, locale=_locale(locale))


def format_datetime(
    value: _dt.datetime | None = None,
    format: DateFormat = "medium",
    locale: str | None = None,
    *,
    tzinfo: _dt.tzinfo | str | None = None,
) -> str:
    """A date and time in the user's time zone (naive values are taken as UTC)."""
    if value is None:
        value = _dt.datetime.now(UTC)
    return _dates.format_datetime(value, format=format, tzinfo=_tz(tzinfo), locale=_locale(locale))


def format_time(
    value: _dt.time | _dt.datetime | None = None,
    format: DateFormat = "medium",
    locale: str | None = None,
    *,
    tzinfo: _dt.tzinfo | str | None = None,
) -> str:
    """A time of day; a ``datetime`` is shown in the user's time zone."""
    if value is None:
        value = _dt.datetime.now(UTC)
    if isinstance(value, _dt.datetime):
        value = to_user_timezone(value, tzinfo)
        return _dates.format_time(value, format=format, tzinfo=value.tzinfo, locale=_locale(locale))
    return _dates.format_time(value, format=format, locale=_locale(locale))


def format_timedelta(
    delta: _dt.timedelta | int,
    granularity: Literal["year", "month", "week", "day", "hour", "minute", "second"] = "second",
    threshold: float = 0.85,
    add_direction: bool = False,
    format: Literal["narrow", "short", "medium", "long"] = "long",
    locale: str | None = None,
) -> str:
    """A duration in words: ``3 hours``, ``3 heures``; ``add_direction`` gives ``in 3 hours``."""
    return _dates.format_timedelta(
        delta,
        granularity=granularity,
        threshold=threshold,
        add_direction=add_direction,
        format=format,
        locale=_locale(locale),
    )
