"""Secret and PII redaction: prefix patterns here, then the value detectors of
:mod:`.secret_values` (detect-secrets' plugins, TruffleHog's AWS pairing rule, high
entropy near key words); docs/validate.md lists every kind and what it costs.

Kinds of the first pass and what replaces them (The Stack / StarCoder redact the same way, so the model
learns the placeholder, not the secret):

========================  ===============================================  ===============
kind                      pattern                                          placeholder
========================  ===============================================  ===============
``private_key``           ``-----BEGIN ... PRIVATE KEY-----`` ... ``END``  ``<KEY>``
``aws_access_key``        ``AKIA``/``ASIA`` + 16 upper-case alphanumerics   ``<KEY>``
``google_api_key``        ``AIza`` + 35 characters                          ``<KEY>``
``github_token``          ``ghp_ gho_ ghu_ ghs_ ghr_``, ``github_pat_``      ``<KEY>``
``slack_token``           ``xoxa- xoxb- xoxp- xoxr-``                       ``<KEY>``
``openai_key``            ``sk-`` + 20 or more key characters               ``<KEY>``
``gitlab_token``          ``glpat-`` + 20 or more key characters            ``<KEY>``
``email``                 ``local@domain.tld``                              ``<EMAIL>``
========================  ===============================================  ===============

Python's ``re`` tries every branch of an alternation at every position, so in this pass a
file is first checked for each kind's trigger (``"AKIA"``, ``"PRIVATE KEY"``...: C-speed ``in``
tests; for e-mail a two-character regex around ``@``, so decorators do not count) and
only the branches whose trigger occurs are compiled into the pattern that scans it
(patterns cached per combination). Most source files trigger nothing.
"""

from __future__ import annotations

import re
from functools import cache

from codemill.validate.secret_values import find_values, replace_values

# kind -> (triggers, pattern, placeholder); the order is the alternation order.
KINDS: dict[str, tuple[tuple[str | re.Pattern, ...], str, str]] = {
    "private_key": (
        ("PRIVATE KEY",),
        # the body is base64 plus PEM headers, so code between two marker
        # string literals (BEGIN = "..."; END = "...") is not taken for a key
        r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s:,.\-]{16,20000}?"
        r"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
        "<KEY>",
    ),
    "aws_access_key": (("AKIA", "ASIA"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "<KEY>"),
    "google_api_key": (("AIza",), r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])", "<KEY>"),
    "github_token": (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
        "<KEY>",
    ),
    "slack_token": (("xox",), r"\bxox[abpr]-[A-Za-z0-9-]{10,250}", "<KEY>"),
    "openai_key": (("sk-",), r"\bsk-[A-Za-z0-9_\-]{20,250}", "<KEY>"),
    "gitlab_token": (("glpat-",), r"\bglpat-[A-Za-z0-9_\-]{20,250}", "<KEY>"),
    # an "@" between address characters, not a decorator or the matmul operator; the
    # pattern starts with the literal "@" so re scans for it at C speed
    "email": (
        (re.compile(r"@(?<=[A-Za-z0-9._%+\-]@)[A-Za-z0-9]"),),
        r"\b[A-Za-z0-9._%+\-]{1,64}+@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}\b",
        "<EMAIL>",
    ),
}


@cache
def _pattern(kinds: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(f"(?P<{k}>{KINDS[k][1]})" for k in kinds))


def present_kinds(text: str) -> tuple[str, ...]:
    """Kinds whose literal trigger occurs in the text (the cheap pre-check)."""
    return tuple(
        k
        for k, (triggers, _, _) in KINDS.items()
        if any(t.search(text) if isinstance(t, re.Pattern) else t in text for t in triggers)
    )


def redact(text: str) -> tuple[str, dict[str, int]]:
    """The text with every secret replaced by its placeholder, and counts per kind.

    First the patterns above (whole spans, e.g. a PEM block), then the value detectors of
    :mod:`.secret_values` on what is left; a key id that pairs with an AWS secret is
    looked for in the original text, since the first pass has already replaced it.
    """
    redacted, counts = _redact_patterns(text)
    found = find_values(redacted, key_id_seen="aws_access_key" in counts)
    redacted, more = replace_values(redacted, found, "<KEY>")
    for kind, n in more.items():
        counts[kind] = counts.get(kind, 0) + n
    return redacted, counts


def _redact_patterns(text: str) -> tuple[str, dict[str, int]]:
    kinds = present_kinds(text)
    if not kinds:
        return text, {}
    counts: dict[str, int] = {}

    def replace(match: re.Match) -> str:
        kind = match.lastgroup  # the named branch that matched (inner groups are non-capturing)
        counts[kind] = counts.get(kind, 0) + 1
        return KINDS[kind][2]

    return _pattern(kinds).sub(replace, text), counts
