"""Numbers, money, dates and times per locale and time zone."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from trellis.contrib.i18n import (
    I18n,
    format_currency,
    format_date,
    format_datetime,
    format_decimal,
    format_number,
    format_percent,
    format_time,
    format_timedelta,
    get_timezone,
    to_user_timezone,
    to_utc,
)
from trellis.contrib.i18n.formatting import set_timezone, zone

NBSP, NNBSP = "\xa0", "\u202f"
# 2024-07-01 02:30 UTC: still June 30 in New York, 04:30 summer time in Paris.
MOMENT = dt.datetime(2024, 7, 1, 2, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("locale", "number", "decimal", "currency", "percent"),
    [
        ("en", "1,234,567", "1,234.5", "€1,234.50", "25%"),
        ("fr", f"1{NNBSP}234{NNBSP}567", f"1{NNBSP}234,5", f"1{NNBSP}234,50{NBSP}€", f"25{NBSP}%"),
        ("de", "1.234.567", "1.234,5", f"1.234,50{NBSP}€", f"25{NBSP}%"),
        ("pt_BR", "1.234.567", "1.234,5", f"€{NBSP}1.234,50", "25%"),
    ],
)
def test_numbers_per_locale(
    locale: str, number: str, decimal: str, currency: str, percent: str
) -> None:
    assert format_number(1234567, locale=locale) == number
    assert format_decimal(1234.5, locale=locale) == decimal
    assert format_currency(Decimal("1234.5"), "EUR", locale=locale) == currency
    assert format_percent(0.25, locale=locale) == percent


def test_number_patterns() -> None:
    assert format_decimal(3.14159, "#,##0.00", locale="en") == "3.14"
    assert format_currency(10, "USD", locale="en", format_type="name") == "10.00 US dollars"


def test_the_current_locale_is_the_default() -> None:
    i18n = I18n(locales=("en", "fr"))
    assert format_decimal(2.5) == "2.5"
    with i18n.activate("fr"):
        assert format_decimal(2.5) == "2,5"
        assert format_date(dt.date(2024, 7, 14)) == "14 juil. 2024"
        assert format_date(dt.date(2024, 7, 14), "full") == "dimanche 14 juillet 2024"
        assert format_timedelta(dt.timedelta(hours=3)) == f"3{NBSP}heures"
        assert format_timedelta(dt.timedelta(days=-2), add_direction=True) == "il y a 2 jours"
    assert format_date(dt.date(2024, 7, 14)) == "Jul 14, 2024"
    assert format_timedelta(dt.timedelta(minutes=1)) == "1 minute"


def test_dates_and_times_in_the_user_time_zone() -> None:
    i18n = I18n(locales=("en", "fr"), timezone="Europe/Paris")
    with i18n.activate("fr"):
        assert get_timezone() == ZoneInfo("Europe/Paris")
        assert format_datetime(MOMENT, "short") == "01/07/2024 04:30"
        assert format_time(MOMENT, "short") == "04:30"
        assert format_date(MOMENT) == "1 juil. 2024"
    with i18n.activate("en", timezone="America/New_York"):
        assert format_datetime(MOMENT, "short") == f"6/30/24, 10:30{NNBSP}PM"
        assert format_date(MOMENT, "short") == "6/30/24"
        assert format_time(MOMENT, "HH:mm zzz") == "22:30 EDT"
    # Outside a request: UTC.
    assert get_timezone() is dt.UTC
    assert format_datetime(MOMENT, "yyyy-MM-dd HH:mm", locale="en") == "2024-07-01 02:30"


def test_naive_datetimes_are_utc() -> None:
    naive = dt.datetime(2024, 1, 15, 12, 0)
    assert format_datetime(naive, "HH:mm", locale="en", tzinfo="Asia/Tokyo") == "21:00"
    assert to_user_timezone(naive, "Asia/Tokyo").hour == 21
    assert format_time(dt.time(9, 5), "short", locale="fr") == "09:05"


def test_to_utc_reads_naive_values_as_the_users_local_time() -> None:
    set_timezone("Europe/Paris")
    try:
        assert to_utc(dt.datetime(2024, 7, 1, 14, 0)) == dt.datetime(
            2024, 7, 1, 12, 0, tzinfo=dt.UTC
        )
        aware = dt.datetime(2024, 7, 1, 14, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
        assert to_utc(aware) == dt.datetime(2024, 7, 1, 5, 0, tzinfo=dt.UTC)
    finally:
        set_timezone(None)


def test_now_and_today_defaults() -> None:
    assert format_date(locale="en")  # today
    assert format_datetime(locale="en")
    assert format_time(locale="en")


def test_zone_names() -> None:
    assert zone("utc") is dt.UTC
    assert zone("Europe/Paris") == ZoneInfo("Europe/Paris")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")
    with pytest.raises(ValueError, match="unknown time zone"):
        zone("../../etc/passwd")
