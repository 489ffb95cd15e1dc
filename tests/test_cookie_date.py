"""RFC 6265 5.1.1, the cookie-date algorithm browsers use for Expires, step by step (a pure parser:
no server is needed to exercise it; tests/test_independent_verdicts.py checks it end to end)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from auditor.scan.cookie_date import (
    date_tokens,
    full_year,
    parse_cookie_date,
    read_day_of_month,
    read_month,
    read_time,
    read_year,
)
from auditor.scan.http import parse_set_cookie


def test_delimiters_cut_tokens_but_colons_and_digits_stay() -> None:
    # delimiter = %x09 / %x20-2F / %x3B-40 / %x5B-60 / %x7B-7E
    assert date_tokens("Thu, 01-Jan-70 00:00:01 GMT") == ["Thu", "01", "Jan", "70", "00:00:01", "GMT"]
    assert date_tokens("\t;;01/jan\\1970{00:00:00}~") == ["01", "jan", "1970", "00:00:00"]
    assert date_tokens(" ,-;") == []


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("00:00:01", (0, 0, 1)),
        ("1:2:3", (1, 2, 3)),
        ("23:59:59GMT", (23, 59, 59)),
        ("123:00:00", None),
        ("12:00", None),
        ("12:00:000", None),
        ("12::00", None),
        ("x12:00:00", None),
    ],
)
def test_time_token(token: str, expected: tuple[int, int, int] | None) -> None:
    assert read_time(token) == expected


@pytest.mark.parametrize(
    ("token", "day", "month", "year"),
    [
        ("01", 1, None, 1),
        ("7th", 7, None, None),
        ("123", None, None, 123),
        ("2024", None, None, 2024),
        ("JANUARY", None, 1, None),
        ("dec", None, 12, None),
        ("ja", None, None, None),
        ("12345", None, None, None),
        ("\u0661\u0662", None, None, None),  # Arabic-Indic digits are not DIGIT
    ],
)
def test_day_month_and_year_tokens(token: str, day: int | None, month: int | None, year: int | None) -> None:
    assert (read_day_of_month(token), read_month(token), read_year(token)) == (day, month, year)


@pytest.mark.parametrize(
    ("year", "full"), [(70, 1970), (99, 1999), (0, 2000), (69, 2069), (100, 100), (1970, 1970)]
)
def test_two_digit_years_map_70_to_99_to_19xx_and_0_to_69_to_20xx(year: int, full: int) -> None:
    assert full_year(year) == full


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Thu, 01-Jan-70 00:00:01 GMT", datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)),
        ("Wed, 09 Jun 2021 10:18:14 GMT", datetime(2021, 6, 9, 10, 18, 14, tzinfo=UTC)),
        ("Sun Nov  6 08:49:37 1994", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),  # asctime order
        ("2030 10:00:00 jun 15", datetime(2030, 6, 15, 10, tzinfo=UTC)),  # any order
        ("01-Jan-69 00:00:00", datetime(2069, 1, 1, tzinfo=UTC)),
        (
            "Fri, 31 Dec 1999 23:59:59 PST",
            datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
        ),  # zones are ignored: UTC
        # the first token that reads as a field gives it: the second time here is read as the day (12)
        ("10:00:00 12:00:00 Mar 2020", datetime(2020, 3, 12, 10, tzinfo=UTC)),
    ],
)
def test_cookie_dates_browsers_accept(value: str, expected: datetime) -> None:
    assert parse_cookie_date(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Thu, 01 Jan 1970",
        "01 Jan 1970 00:00",
        "Jan 1970 00:00:00",
        "01 1970 00:00:00",
        "01 Jan 00:00:00 x",
        "32 Jan 2020 00:00:00",
        "00 Jan 2020 00:00:00",
        "01 Jan 1600 00:00:00",
        "01 Jan 2020 24:00:00",
        "01 Jan 2020 00:60:00",
        "01 Jan 2020 00:00:60",
        "30 Feb 2020 00:00:00",
        "31 Apr 2021 00:00:00",
        "2020-01-01T00:00:00Z",  # ISO 8601 is not a cookie-date: no month token
    ],
)
def test_invalid_cookie_dates_are_unknown(value: str) -> None:
    assert parse_cookie_date(value) is None


def test_an_unreadable_expires_is_unknown_so_never_a_deletion() -> None:
    """RFC 6265 5.2.1: an Expires that fails to parse is ignored, never read as a past date."""
    assert parse_set_cookie("gone=; Expires=30 Feb 1970 00:00:00").expires is None
    assert parse_set_cookie("gone=; Expires=Thu, 01-Jan-70 00:00:01 GMT").expires == datetime(
        1970, 1, 1, 0, 0, 1, tzinfo=UTC
    )
    kept = parse_set_cookie("gone=; Expires=Thu, 01-Jan-70 00:00:01 GMT; Expires=never")
    assert kept.expires == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
