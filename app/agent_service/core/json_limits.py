"""What any JSON a client sends must satisfy before the service stores or runs it.

- nesting of at most MAX_DEPTH levels: deeper metadata was stored, then every read of it
  failed (JSON encoders and PostgreSQL's jsonb recurse);
- no NUL character in a key or a string: PostgreSQL text and jsonb cannot hold one;
- no lone surrogate (`"\\ud800"` is valid JSON but no UTF-8): it cannot be stored either;
- no NaN or Infinity (Python's JSON reads them; jsonb and JSON answers cannot hold them).
The first offence is reported as the dotted path of the field, for a 422.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 32


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (not valid UTF-8)"
    return None


def json_problem(value: Any, path: str = "body", depth: int = 0) -> str | None:
    """`<path>: <what is wrong>` for the first offending part of `value`, or None."""
    if depth > MAX_DEPTH:
        return f"{path}: nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, str):
        problem = _bad_text(value)
        return None if problem is None else f"{path}: {problem}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path}: not a finite number"
    if isinstance(value, dict):
        for key, item in value.items():
            key_text = str(key)
            key_problem = _bad_text(key_text)
            child = f"{path}.{key_text[:64]!r}" if key_problem else f"{path}.{key_text[:64]}"
            if key_problem is not None:
                return f"{child}: the key {key_problem}"
            found = json_problem(item, child, depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = json_problem(item, f"{path}[{index}]", depth + 1)
            if found is not None:
                return found
    return None


def text_problem(text: str) -> str | None:
    return _bad_text(text)
