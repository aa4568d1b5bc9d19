"""PII detection and redaction on plain text: e-mail addresses, payment card numbers (Luhn
checked) and US social security numbers.

The one redaction the service has: the agents' state reducers and the logs both call
`redact`. It imports nothing beyond the standard library, so the logging set-up can use it
before (and without) loading the graphs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypedDict


class PIIMatch(TypedDict):
    """One PII value found in a text (the shape langchain's PII detectors return too)."""

    type: str
    value: str
    start: int
    end: int


# Every pattern runs in linear time, whatever the text (a log line, a 1 MiB message): each
# match attempt starts only where a run of its characters starts (the lookbehinds) and
# possessive quantifiers never backtrack into a run. `\b[A-Za-z0-9._%+-]+@...` restarts at
# every character of a long "a.a.a..." run instead, and took seconds on 16 KB.
_LOCAL = "A-Za-z0-9._%+-"
_EMAIL_CANDIDATE = re.compile(rf"(?<![{_LOCAL}])[{_LOCAL}]++@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)*+")
_WORD_START = re.compile(r"[A-Za-z0-9_]")
_TLD = re.compile(r"[A-Za-z]{2,}")
# 13 to 19 digits, optionally grouped by single spaces or dashes, not part of a longer number.
_CARD = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
# Area 000/666/9xx, group 00 and serial 0000 are never issued.
_SSN = re.compile(r"(?<!\d)(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\d)")


def passes_luhn(number: str) -> bool:
    """The payment-card checksum, on the digits of `number`."""
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return bool(digits) and total % 10 == 0


def _matches(kind: str, pattern: re.Pattern[str], text: str) -> list[PIIMatch]:
    return [
        PIIMatch(type=kind, value=m.group(), start=m.start(), end=m.end())
        for m in pattern.finditer(text)
    ]


def _email(candidate: re.Match[str]) -> PIIMatch | None:
    """The address inside a candidate run: the local part from its first word character
    (`\b`), the domain up to its last label that is a top-level domain (2+ letters)."""
    text = candidate.group()
    at = text.index("@")
    first = _WORD_START.search(text, 0, at)
    if first is None:
        return None
    labels = text[at + 1 :].split(".")
    while len(labels) > 1 and not _TLD.fullmatch(labels[-1]):
        labels.pop()
    if len(labels) < 2:
        return None
    end = at + 1 + len(".".join(labels))
    start = candidate.start() + first.start()
    return PIIMatch(
        type="email", value=text[first.start() : end], start=start, end=candidate.start() + end
    )


def detect_email(text: str) -> list[PIIMatch]:
    found = (_email(candidate) for candidate in _EMAIL_CANDIDATE.finditer(text))
    return [match for match in found if match is not None]


def detect_card(text: str) -> list[PIIMatch]:
    # The checksum keeps order numbers, phone numbers and the like (nine in ten of them) out.
    return [match for match in _matches("card", _CARD, text) if passes_luhn(match["value"])]


def detect_ssn(text: str) -> list[PIIMatch]:
    return _matches("ssn", _SSN, text)


DETECTORS: dict[str, Callable[[str], list[PIIMatch]]] = {
    "email": detect_email,
    "card": detect_card,
    "ssn": detect_ssn,
}


# The detectors `might_hold_pii` knows: another one added to DETECTORS turns the shortcut off.
_PREFILTERED = frozenset(DETECTORS)


def detect_pii(text: str) -> list[PIIMatch]:
    """Every PII value in `text`, in order; of overlapping ones the earliest (longest) wins."""
    found = sorted(
        (match for detector in DETECTORS.values() for match in detector(text)),
        key=lambda m: (m["start"], -m["end"]),
    )
    kept: list[PIIMatch] = []
    for match in found:
        if not kept or match["start"] >= kept[-1]["end"]:
            kept.append(match)
    return kept


# What every detector's match needs: an email an "@", a card 13 digits and an SSN 9 (each in
# a run with single separators). A text with neither (most log fields, most messages) skips
# the detectors: redaction ran on every field of every log line, ~60% of a line's cost.
_NINE_DIGITS = re.compile(r"\d(?:[ -]?\d){8}")


def might_hold_pii(text: str) -> bool:
    """False only when no detector of DETECTORS can match `text`."""
    return "@" in text or _NINE_DIGITS.search(text) is not None


def redact(text: str) -> str:
    """`text` with every PII value replaced by `[REDACTED_<TYPE>]` (EMAIL, CARD, SSN)."""
    if not text or (DETECTORS.keys() == _PREFILTERED and not might_hold_pii(text)):
        return text
    out: list[str] = []
    cursor = 0
    for match in detect_pii(text):
        out.append(text[cursor : match["start"]])
        out.append(f"[REDACTED_{match['type'].upper()}]")
        cursor = match["end"]
    out.append(text[cursor:])
    return "".join(out)
