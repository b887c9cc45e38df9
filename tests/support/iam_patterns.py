"""IAM's wildcard match, as the tests check names against policy patterns."""

from __future__ import annotations

import re


def iam_matches(pattern: str, value: str) -> bool:
    """IAM's wildcard match on ARNs and StringLike: ``*`` any run of characters, ``?`` one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None
