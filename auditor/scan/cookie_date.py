"""The cookie-date algorithm of RFC 6265 section 5.1.1, which browsers use to read Expires.

It is not a date format but a token scan: the value is cut at delimiters, and the first token that
reads as a time, a day of month, a month and a year (in any order) gives each field; two-digit
years are 70-99 -> 19xx and 0-69 -> 20xx. The stdlib's lenient http2time guesses the century
from today's date instead ("01-Jan-70" became 2070), so a deletion cookie looked like a stored one.
"""

from __future__ import annotations

from datetime import UTC, datetime

# delimiter = %x09 / %x20-2F / %x3B-40 / %x5B-60 / %x7B-7E (":" and digits are not delimiters)
DELIMITERS = frozenset(
    chr(code)
    for code in (0x09, *range(0x20, 0x30), *range(0x3B, 0x41), *range(0x5B, 0x61), *range(0x7B, 0x7F))
)
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DIGITS = "0123456789"  # DIGIT is ASCII only: str.isdigit() would accept other scripts' digits


def date_tokens(value: str) -> list[str]:
    """Step 1: the date-token-list, the runs of non-delimiter characters."""
    tokens: list[str] = []
    current: list[str] = []
    for char in value:
        if char in DELIMITERS:
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        tokens.append("".join(current))
    return tokens


def _digits(token: str, start: int, fewest: int, most: int) -> tuple[int, int] | None:
    """fewest*most DIGIT at `start`, not followed by another digit: (value, end), or None."""
    end = start
    while end < len(token) and token[end] in _DIGITS:
        end += 1
    if not fewest <= end - start <= most:
        return None
    return int(token[start:end]), end


def read_time(token: str) -> tuple[int, int, int] | None:
    """time = hms-time ( non-digit *OCTET ); hms-time = 1*2DIGIT ":" 1*2DIGIT ":" 1*2DIGIT."""
    fields: list[int] = []
    position = 0
    for index in range(3):
        if index:
            if token[position : position + 1] != ":":
                return None
            position += 1
        read = _digits(token, position, 1, 2)
        if read is None:
            return None
        value, position = read
        fields.append(value)
    return fields[0], fields[1], fields[2]


def read_day_of_month(token: str) -> int | None:
    """day-of-month = 1*2DIGIT ( non-digit *OCTET )."""
    read = _digits(token, 0, 1, 2)
    return None if read is None else read[0]


def read_month(token: str) -> int | None:
    """month = ( "jan" / "feb" / ... / "dec" ) *OCTET, case-insensitive: 1-12."""
    prefix = token[:3].lower()
    return MONTHS.index(prefix) + 1 if prefix in MONTHS else None


def read_year(token: str) -> int | None:
    """year = 2*4DIGIT ( non-digit *OCTET )."""
    read = _digits(token, 0, 2, 4)
    return None if read is None else read[0]


def full_year(year: int) -> int:
    """Steps 3-4: 70-99 -> 1970-1999, 0-69 -> 2000-2069; any other year is kept."""
    if 70 <= year <= 99:
        return year + 1900
    if 0 <= year <= 69:
        return year + 2000
    return year


def parse_cookie_date(value: str) -> datetime | None:
    """The date (UTC) a browser reads from a cookie-date, or None when the algorithm fails
    (a field missing or out of range, a year before 1601, a day the month lacks)."""
    time: tuple[int, int, int] | None = None
    day = month = year = None
    for token in date_tokens(value):  # step 2: each field is taken from the first token that reads as it
        if time is None and (found_time := read_time(token)) is not None:
            time = found_time
        elif day is None and (found_day := read_day_of_month(token)) is not None:
            day = found_day
        elif month is None and (found_month := read_month(token)) is not None:
            month = found_month
        elif year is None and (found_year := read_year(token)) is not None:
            year = found_year
    if time is None or day is None or month is None or year is None:
        return None  # step 5
    year = full_year(year)
    hour, minute, second = time
    if not 1 <= day <= 31 or year < 1601 or hour > 23 or minute > 59 or second > 59:
        return None  # step 5
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:  # step 6: a date that does not exist, such as 30 February
        return None
