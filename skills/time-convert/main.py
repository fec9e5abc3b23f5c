#!/usr/bin/env python3
"""time-convert: a point in time in other IANA time zones (standard library + tzdata)."""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import zoneinfo
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

PROG = "time-convert"
_EPOCH = re.compile(r"^[+-]?\d+(\.\d+)?$")
_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


class UserError(Exception):
    """A problem with the input, reported on stderr without a traceback."""


def zone(name: str) -> tzinfo:
    name = name.strip()
    if name.upper() in ("UTC", "Z", "GMT", "ZULU"):
        return UTC
    match = _OFFSET.match(name)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if hours > 23 or minutes > 59:
            raise UserError(f"{name!r} is not a valid UTC offset")
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if sign == "-" else delta)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        if not zoneinfo.available_timezones():
            raise UserError(
                "no time zone data here (install the tzdata package); only UTC and fixed "
                "offsets like +05:30 work"
            ) from None
        hint = suggestions(name)
        more = f" (did you mean {', '.join(hint)}?)" if hint else ""
        raise UserError(f"unknown time zone {name!r}{more}") from None


def suggestions(name: str) -> list[str]:
    key = name.lower().replace(" ", "_")
    tail = key.rsplit("/", 1)[-1]
    return sorted(z for z in zoneinfo.available_timezones() if tail and tail in z.lower())[:5]


def parse_time(text: str, from_zone: tzinfo, notes: list[str]) -> datetime:
    text = text.strip()
    if text.lower() == "now":
        return datetime.now(UTC)
    if _EPOCH.match(text):
        value = float(text)
        digits = len(text.lstrip("+-").split(".")[0])
        if digits >= 13:
            value /= 1000
            notes.append(f"{text} has {digits} digits: read as milliseconds since the epoch")
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise UserError(f"{text} is out of the supported range of timestamps") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{text!r} is not `now`, a Unix timestamp or an ISO 8601 time like "
            "2024-03-10T14:30 or 2024-03-10T14:30+01:00"
        ) from None
    if parsed.tzinfo is not None:
        return parsed
    return localize(parsed, from_zone, notes)


def localize(naive: datetime, tz: tzinfo, notes: list[str]) -> datetime:
    """Attach `tz` to a wall-clock time, saying so when DST makes that time odd."""
    early = naive.replace(tzinfo=tz, fold=0)
    late = naive.replace(tzinfo=tz, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early
    # The two folds disagree: the wall time is either repeated (clocks went back) or
    # skipped (clocks went forward). A skipped time does not survive a round trip via UTC.
    roundtrip = early.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if roundtrip != naive:
        notes.append(
            f"{naive.isoformat()} does not exist in {tz} (clocks moved forward); "
            f"read with the offset before the change, {fmt_offset(early.utcoffset())}"
        )
    else:
        notes.append(
            f"{naive.isoformat()} happens twice in {tz} (clocks moved back); "
            f"the first one, {fmt_offset(early.utcoffset())}, is used"
        )
    return early


def fmt_offset(delta: timedelta | None) -> str:
    total = int((delta or timedelta()).total_seconds())
    sign = "-" if total < 0 else "+"
    hours, rest = divmod(abs(total), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")


def describe(instant: datetime, name: str, tz: tzinfo) -> dict[str, Any]:
    local = instant.astimezone(tz)
    dst = local.dst()
    return {
        "zone": name,
        "local": local.isoformat(),
        "date": local.date().isoformat(),
        "time": local.time().replace(tzinfo=None).isoformat(),
        "weekday": local.strftime("%A"),
        "utc_offset": fmt_offset(local.utcoffset()),
        "abbreviation": local.tzname() or "",
        "dst": bool(dst),
    }


def convert(text: str, from_zone: str, to_json: str) -> dict[str, Any]:
    try:
        targets = json.loads(to_json)
    except json.JSONDecodeError:
        targets = [to_json]  # a single zone name given bare
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise UserError('--to must be a JSON array of zone names, e.g. ["Asia/Tokyo"]')
    zones = [(name, zone(name)) for name in targets]
    notes: list[str] = []
    instant = parse_time(text, zone(from_zone), notes)
    utc = instant.astimezone(UTC)
    epoch = utc.timestamp()
    return {
        "input": text,
        "utc": utc.isoformat().replace("+00:00", "Z"),
        "epoch_seconds": int(epoch) if epoch == int(epoch) else epoch,
        "conversions": [describe(instant, name, tz) for name, tz in zones],
        "notes": notes,
    }


def list_zones(search: str | None, limit: int) -> dict[str, Any]:
    names = sorted(zoneinfo.available_timezones())
    if not names:
        raise UserError("no time zone data here (install the tzdata package)")
    if search:
        key = search.strip().lower().replace(" ", "_")
        names = [n for n in names if key in n.lower()]
    return {"count": len(names), "truncated": len(names) > limit, "zones": names[:limit]}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0], allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", allow_abbrev=False)
    c.add_argument("--time", required=True)
    c.add_argument("--from-zone", default="UTC")
    c.add_argument("--to", default='["UTC"]', help="a JSON array of zone names")
    z = sub.add_parser("zones", allow_abbrev=False)
    z.add_argument("--search")
    z.add_argument("--limit", type=int, default=100)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "convert":
            result = convert(args.time, args.from_zone, args.to)
        else:
            if not 1 <= args.limit <= 1000:
                raise UserError("--limit must be between 1 and 1000")
            result = list_zones(args.search, args.limit)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):  # UTF-8 whatever the sandbox's locale
            stream.reconfigure(encoding="utf-8", errors="replace")
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as exc:  # never a traceback for the caller: say what broke
        print(f"{PROG}: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(70)
