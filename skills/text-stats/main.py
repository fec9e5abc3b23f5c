#!/usr/bin/env python3
"""text-stats: counts, reading time and frequent words of a text (standard library only)."""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

PROG = "text-stats"
# A word: letters or digits, with inner apostrophes or hyphens (don't, well-known).
_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
# A sentence ends at . ! ? (or their runs, and closing quotes) followed by space or the end.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s|$)")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_STOPWORDS = """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves"""
STOPWORDS = frozenset(_STOPWORDS.split())


def measure(text: str, top: int, wpm: int, skip_stopwords: bool) -> dict[str, Any]:
    words = _WORD.findall(text)
    lowered = [w.lower().replace("\u2019", "'") for w in words]
    sentences = [s for s in _SENTENCE_END.split(text) if _WORD.search(s)]
    paragraphs = [p for p in _PARAGRAPH_BREAK.split(text) if p.strip()]
    counts = Counter(w for w in lowered if not (skip_stopwords and w in STOPWORDS))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    seconds = math.ceil(len(words) * 60 / wpm)
    letters = sum(len(w) for w in words)
    return {
        "characters": len(text),
        "characters_no_whitespace": sum(1 for c in text if not c.isspace()),
        "words": len(words),
        "unique_words": len(set(lowered)),
        "lines": len(text.splitlines()),
        "sentences": len(sentences),
        "paragraphs": len(paragraphs),
        "average_word_length": round(letters / len(words), 2) if words else 0,
        "average_sentence_words": round(len(words) / len(sentences), 2) if sentences else 0,
        "reading_time_seconds": seconds,
        "reading_time": human(seconds),
        "top_words": [{"word": w, "count": c} for w, c in ranked],
    }


def human(seconds: int) -> str:
    if seconds == 0:
        return "0 min"
    if seconds < 60:
        return "less than a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("--text", required=True, help="the text to measure")
    p.add_argument("--top", type=bounded(0, 100), default=10)
    p.add_argument("--wpm", type=bounded(50, 1000), default=200)
    p.add_argument("--skip-stopwords", type=boolean, default=True)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    print(json.dumps(measure(args.text, args.top, args.wpm, args.skip_stopwords),
                     ensure_ascii=False))  # fmt: skip
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
