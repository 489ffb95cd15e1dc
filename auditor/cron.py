"""Crontab lines: read with crontab's meaning and checked field by field.

The config validates `[schedule] cron` and the scheduler runs it; both use this module, so the
config never imports the scheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
_CRON_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]  # crontab numbering: 0 and 7 are Sunday


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field in APScheduler 3's terms. APScheduler 3 reads the numbers as
    0 = Monday (its issue 286), so `1-5` would run Tuesday to Saturday: numbers become day names."""
    items = []
    for item in field.lower().split(","):
        spec, _, step = item.partition("/")
        if spec != "*" and not spec.replace("-", "").isdigit():
            items.append(item)  # names (mon-fri) mean the same to both
            continue
        first, _, last = (spec if spec != "*" else "0-6").partition("-")
        low, high = int(first), int(last or (6 if step else first))
        if not (0 <= low <= 7 and 0 <= high <= 7 and low <= high) or (step and not step.isdigit()):
            raise ValueError(f"day of week {item!r}: use 0-7 (0 and 7 are Sunday) or names")
        if spec == "*" and not step:
            items.append("*")
            continue
        items += [_CRON_DAYS[d] for d in range(low, high + 1, int(step or 1))]
    return ",".join(dict.fromkeys(items))


def make_trigger(cron: str, tz: str) -> CronTrigger:
    """A CronTrigger from 5 crontab fields, or 6 with seconds first (handy to test), with crontab's
    meaning of weekday numbers."""
    # lazy: APScheduler (~0.1 s) only for a config that sets a cron line, or the scheduler itself
    from apscheduler.triggers.cron import CronTrigger

    fields = cron.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ValueError(f"expected 5 fields (or 6 with seconds first), got {len(fields)}")
    second, minute, hour, day, month, dow = fields
    return CronTrigger(
        second=second,
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_weekdays(dow),
        timezone=tz,
    )


def cron_problem(cron: str) -> str | None:
    """Why a crontab line cannot schedule anything, naming the field at fault; None when it can."""
    fields = cron.split()
    names = CRON_FIELDS if len(fields) == 5 else ("second", *CRON_FIELDS)
    if len(fields) not in (5, 6):
        return (
            f"{cron!r} has {len(fields)} field{'s' if len(fields) != 1 else ''}; expected 5: "
            f"{' '.join(n.replace(' ', '-') for n in CRON_FIELDS)} (or 6 with seconds first)"
        )
    for i, (name, value) in enumerate(zip(names, fields, strict=False)):
        probe = ["*"] * len(fields)
        probe[i] = value
        try:
            make_trigger(" ".join(probe), "UTC")
        except (ValueError, TypeError, LookupError) as exc:  # APScheduler's parsers raise ValueError mostly
            reason = str(exc)
            if reason.startswith("Error validating expression"):
                reason = reason.partition(": ")[2] or reason
            return f"{cron!r}: the {name} field {value!r} is wrong ({reason})"
    try:
        make_trigger(cron, "UTC")
    except (ValueError, TypeError, LookupError) as exc:
        return f"{cron!r}: {exc}"
    return None
