#!/usr/bin/env python3
"""Writes next-runs.json: for each five-field crontab expression, the next runs after a few
start times, as computed by croniter (an independent implementation, from PyPI), not by this
project's code. tests/crontab_table.rs checks our scheduler against it.

    python3 -m pip install croniter==7.0.0
    python3 tests/data/crontab/generate.py            # rewrite the table
    python3 tests/data/crontab/generate.py --check    # exit 1 if the committed table differs

Expressions where croniter and crontab(5) are known to disagree are left out: a day-of-month or
day-of-week field that starts with `*` but is not `*` (`*/2`): Vixie cron ANDs then, croniter
ORs. Our own unit tests cover that case.
"""
import datetime as dt
import json
import pathlib
import sys

from croniter import croniter
from zoneinfo import ZoneInfo

EXPRESSIONS = [
    "* * * * *",
    "0 3 * * 1",
    "0 3 * * 0",
    "0 3 * * 7",
    "0 3 * * 1-5",
    "30 2 * * 6,0",
    "0 3 * * MON-FRI",
    "15 4 * * sun",
    "0 0 * * 5-7",
    "*/15 * * * *",
    "5/20 * * * *",
    "0 */6 * * *",
    "0 1-23/4 * * *",
    "0 1,13 * * *",
    "0 0 1 * *",
    "0 0 1,15 * *",
    "0 0 1 * 1",
    "30 6 13 * 5",
    "0 0 31 * *",
    "0 0 29 2 *",
    "0 12 * jan,jul *",
    "0 12 1 JAN-MAR *",
    "0 0 1 */3 *",
    "59 23 28-31 * *",
    "0 2 * * 2-4",
    "10,20,30 8-17 * * 1-5",
    "0 0 * 2 0",
    "7 7 7 7 *",
]

STARTS = [
    ("2026-11-24T12:00:00", "UTC"),
    ("2026-12-31T23:59:00", "UTC"),
    ("2028-02-28T23:30:00", "UTC"),
    ("2026-11-24T12:00:00", "Asia/Tokyo"),
    ("2027-01-15T08:45:00", "America/New_York"),
]

RUNS = 6


def table():
    cases = []
    for expr in EXPRESSIONS:
        for start, zone in STARTS:
            tz = ZoneInfo(zone)
            begin = dt.datetime.fromisoformat(start).replace(tzinfo=tz)
            it = croniter(expr, begin)
            runs = []
            for _ in range(RUNS):
                t = it.get_next(dt.datetime)
                runs.append(t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
            cases.append({
                "expr": expr,
                "zone": zone,
                "after": begin.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "next": runs,
            })
    return {"generator": "croniter", "cases": cases}


def main():
    out = pathlib.Path(__file__).with_name("next-runs.json")
    text = json.dumps(table(), indent=1) + "\n"
    if "--check" in sys.argv:
        if out.read_text() != text:
            print(f"{out} differs from what croniter computes now", file=sys.stderr)
            sys.exit(1)
        print(f"{out}: matches croniter")
        return
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
