"""Secrets found by value: detect-secrets' plugins, TruffleHog's AWS pairing rule, and
high-entropy strings near key/secret/token/password words (see docs/validate.md).

Each detector yields secret *values*; :func:`replace_values` then replaces every
occurrence of each value in the file, so a secret quoted twice, or a pair split over a
docstring, goes everywhere it appears.

detect-secrets' regexes are written for one line at a time and several start with
optional groups that re tries at every position (1 s per 15 MB each). So every plugin
has a trigger, a regex that starts with a literal or a keyword, and the plugin scans only
the lines where its trigger matches: the same findings on the few lines that can hold
one (IBM's keyword rule is cut at 40 characters between keyword and value). The plugin
list is the one BigCode's StarCoder PII pipeline used (bigcode-dataset
``pii/utils/keys_detection.py``) plus detect-secrets 1.5's newer token formats; like
BigCode we leave out ``KeywordDetector``, ``BasicAuthDetector`` (``user:pass@host`` in
docs) and ``PrivateKeyDetector`` (``_secrets.KINDS`` redacts the whole PEM block). The
entropy plugins' measure is used only near key words (BigCode ran it on every quoted
string, behind detect-secrets' gibberish filter, which needs a package not installed here).
"""

from __future__ import annotations

import importlib
import math
import re
from functools import lru_cache

# (detect-secrets plugin, our kind, trigger). Triggers run on the lower-cased text (a
# superset of the plugin's own matches, which decide); each starts with one literal, so re
# finds it at C speed (an alternation of different first letters is 10x slower, hence
# tuples); one marked "exact:" runs on the text as it is (its upper-case prefix is rarer).
PLUGINS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("artifactory.ArtifactoryDetector", "artifactory_token", ("exact:AKC", r"exact:AP[\dA-F]")),
    ("aws.AWSKeyDetector", "aws_access_key", ("a3t|abia|acca|akia|asia|aws",)),
    ("azure_storage_key.AzureStorageKeyDetector", "azure_storage_key", ("accountkey=",)),
    (
        "cloudant.CloudantDetector",
        "cloudant_credentials",
        (r"cl(?:oudant|ou)?[-_]?(?:api)?(?:key|pw|pass|token)", r"cloudant\.com"),
    ),
    ("discord.DiscordBotTokenDetector", "discord_token", (r"\.[a-z\d_-]{6}\.[a-z\d_-]{27}",)),
    ("github_token.GitHubTokenDetector", "github_token", ("gh[pousr]_",)),
    (
        "gitlab_token.GitLabTokenDetector",
        "gitlab_token",
        ("gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-", "gr1348941"),
    ),
    # its keyword is optional ("api_key = ..." counts): the 44-character value is the filter
    (
        "ibm_cloud_iam.IbmCloudIamDetector",
        "ibm_cloud_iam_key",
        tuple(rf"{word}[^\n]{{0,40}}?[a-z0-9_\-]{{44}}" for word in ("key", "pwd", "pass", "token")),
    ),
    ("ibm_cos_hmac.IbmCosHmacDetector", "ibm_cos_hmac", ("secret[-_]?(?:access)?[-_]?key",)),
    ("jwt.JwtTokenDetector", "jwt", ("eyj",)),
    ("mailchimp.MailchimpDetector", "mailchimp_key", (r"-us\d",)),
    ("npm.NpmDetector", "npm_token", ("_authtoken",)),
    ("openai.OpenAIDetector", "openai_key", ("t3blbkfj",)),
    ("pypi_token.PypiTokenDetector", "pypi_token", ("pypi-ag",)),
    ("sendgrid.SendGridDetector", "sendgrid_key", (r"sg\.",)),
    ("slack.SlackDetector", "slack_token", ("xox[a-z]-", r"hooks\.slack\.com")),
    (
        "softlayer.SoftlayerDetector",
        "softlayer_key",
        ("s(?:oftlayer|l)[-_]?(?:api)?[-_]?(?:key|pw|pass|token)", r"api\.softlayer\.com"),
    ),
    ("square_oauth.SquareOAuthDetector", "square_oauth", ("sq0csp-",)),
    ("stripe.StripeDetector", "stripe_key", ("k_live_",)),
    ("telegram_token.TelegramBotTokenDetector", "telegram_token", (":[0-9a-z_-]{35}",)),
    ("twilio.TwilioKeyDetector", "twilio_key", ("exact:AC[a-z0-9]{32}", "exact:SK[a-z0-9]{32}")),
)

# TruffleHog's AWS detector: a key id and a 40-character base64 run in the same file are a
# pair, wherever they are (prose, comments, no assignment needed).
AWS_KEY_ID = re.compile(r"(?<![0-9A-Z])(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])")
AWS_SECRET = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/])")

# A keyword, then within 40 characters (newlines allowed, as TruffleHog's PrefixRegex) a
# base64/url-safe/hex run of 12+ characters, "=" only as padding at its end (so in
# "code=u3F05aE..." the value is what follows "=").
# The keyword must end its word ("api_key", "secretKey", "tokens:"; not "tokenize" nor the
# "...aKEYr..." that lower-casing finds inside base64 such as a certificate), and not be
# an earlier pass's "<KEY>" placeholder (checked after the word: a pattern that starts
# with a lookbehind loses re's fast literal search, 3x slower).
SHORT_MIN_LENGTH = 12  # a shorter value near a key word is too often a word or a name to judge by its letters
NEAR_KEYWORD = tuple(
    re.compile(  # on the lower-cased text, like the triggers; one per keyword (speed)
        word + f"(?<!<{word})" + r"s?(?![a-z0-9+/])[\s\S]{0,40}?"
        r"(?<![a-z0-9+/_\-])([a-z0-9+/_\-]{%d,}={0,2})(?![a-z0-9+/=_\-])" % SHORT_MIN_LENGTH
    )
    for word in ("key", "secret", "token", "password", "passwd", "pwd", "credential")
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
HEX = re.compile(r"[0-9a-fA-F]+")
BASE64_LIMIT, HEX_LIMIT, HEX_MIN_LENGTH = 4.5, 3.0, 32  # detect-secrets' default limits
# Below 40 characters 4.5 bits is out of reach (log2(20) = 4.32 is the most 20 characters can
# have), so a shorter value is judged against the most its length allows: random alphanumerics
# of 12-40 characters reach 0.85 of log2(length) 98 times in 100, words and names seldom do.
# CamelCase names (``Ed25519PublicKey``, ``MLKEM1024P384PublicKey``) pass that, so the class of
# character (lower, upper, digit, other) must also change at half the neighbours or more (random: 62%;
# those names: 32-46%). 72-88% of random 12-30 character alphanumerics pass all (docs/validate.md).
SHORT_MAX_LENGTH, SHORT_ENTROPY_SHARE, SHORT_MAX_RUN, SHORT_CLASS_CHANGES = 40, 0.85, 5, 0.5
CLASS_RUN = re.compile(r"[a-z]{%d}|[A-Z]{%d}|[0-9]{%d}" % ((SHORT_MAX_RUN + 1,) * 3))


@lru_cache(maxsize=1)
def _plugins() -> tuple[tuple[object, str, tuple[tuple[re.Pattern, bool], ...]], ...]:
    out = []
    for path, kind, triggers in PLUGINS:
        module, name = path.rsplit(".", 1)
        cls = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), name)
        compiled = tuple((re.compile(t.removeprefix("exact:")), t.startswith("exact:")) for t in triggers)
        out.append((cls(), kind, compiled))
    return tuple(out)


@lru_cache(maxsize=1)
def _entropy():
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString, HexHighEntropyString

    return Base64HighEntropyString().calculate_shannon_entropy, HexHighEntropyString().calculate_shannon_entropy


def lowered(text: str) -> str:
    """``text`` in lower case, position for position (what the triggers scan)."""
    lower = text.lower()
    # a few characters lower to two ("İ"): then only ASCII letters, which keeps positions
    return lower if len(lower) == len(text) else text.translate(_ASCII_LOWER)


def trigger_lines(text: str, lower: str, triggers: tuple[tuple[re.Pattern, bool], ...]) -> str:
    """The lines of ``text`` where a trigger matches (``lower``, or ``text`` if exact), in order."""
    spans: dict[int, int] = {}
    for trigger, exact in triggers:
        for m in trigger.finditer(text if exact else lower):
            start = text.rfind("\n", 0, m.start()) + 1
            if start not in spans:
                end = text.find("\n", m.end())
                spans[start] = len(text) if end < 0 else end
    return "\n".join(text[s : spans[s]] for s in sorted(spans))


def _is_placeholder(value: str) -> bool:
    """Example values (``ACxxxx...``, ``0123456789...``, ``${TOKEN}``) are not secrets."""
    from detect_secrets.filters.heuristic import is_sequential_string, is_templated_secret

    return len(set(value)) < 8 or is_sequential_string(value) or is_templated_secret(value)


def _random_base64(value: str) -> bool:
    """Mixed case and a digit or symbol, not hex: a random key, not a word or a SHA-1."""
    return (
        not HEX.fullmatch(value)
        and any(c.islower() for c in value)
        and any(c.isupper() for c in value)
        and any(c.isdigit() or c in "+/" for c in value)
    )


IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+){2,}")


def high_entropy(value: str) -> bool:
    """detect-secrets' entropy test (hex or base64 charset), or for a value under 40 characters
    the length-aware :func:`_random_short`; plus a digit, no UUID shape, and not a name made of
    three or more ``_``-joined parts (``id_GostR3410_2001_KeyTransport``)."""
    from detect_secrets.filters.heuristic import is_potential_uuid

    if not any(c.isdigit() for c in value) or is_potential_uuid(value) or IDENTIFIER.fullmatch(value):
        return False
    base64_entropy, hex_entropy = _entropy()
    if HEX.fullmatch(value):
        return len(value) >= HEX_MIN_LENGTH and hex_entropy(value) > HEX_LIMIT
    bare = value.rstrip("=")
    entropy = base64_entropy(bare)
    return entropy > BASE64_LIMIT or (len(bare) < SHORT_MAX_LENGTH and _random_short(bare, entropy))


def _random_short(value: str, entropy: float) -> bool:
    """A short random password or token: lower, upper and digit, no run of more than 5 of one
    class (``Password123456``, ``changeme``), entropy near the most its length allows, and
    the class changing often (not ``Ed25519PublicKey``)."""
    return (
        len(value) >= SHORT_MIN_LENGTH
        and any(c.islower() for c in value)
        and any(c.isupper() for c in value)
        and not CLASS_RUN.search(value)
        and entropy >= SHORT_ENTROPY_SHARE * math.log2(len(value))
        and _class_changes(value) >= SHORT_CLASS_CHANGES * (len(value) - 1)
    )


def _class_changes(value: str) -> int:
    """How many neighbouring characters differ in class (lower, upper, digit, other)."""
    kinds = [0 if c.islower() else 1 if c.isupper() else 2 if c.isdigit() else 3 for c in value]
    return sum(a != b for a, b in zip(kinds, kinds[1:]))


def aws_pair_secrets(text: str) -> list[str]:
    """The 40-character runs that pair with a key id in the same file (TruffleHog's rule)."""
    runs = (m.group() for m in AWS_SECRET.finditer(text))
    return [run for run in runs if _random_base64(run) and not _is_placeholder(run)]


VALUE_END = re.compile(r"[\s\"'`]")  # a secret holds no quote or space (npm's ".+" runs to the line end)


def _whole_value(value: str, kind: str, lines: str) -> str:
    r"""A plugin's finding as the bare secret: without the separators some regexes match
    around it (Artifactory's ``(?:\s|=|:|"|^)``, Azure's ``AccountKey=``), cut at a quote or
    space, and a JWT with its signature (the plugin's lazy regex stops after the payload)."""
    value = VALUE_END.split(value.lstrip(" \t\r\n\"'=:").removeprefix("AccountKey="), 1)[0]
    if kind == "jwt":
        m = re.search(re.escape(value) + r"\.?[A-Za-z0-9_\-+/=]*", lines)
        value = m.group() if m else value
    return value


def _plugin_kind(kind: str, value: str, lines: str) -> str | None:
    """The kind of a plugin's finding, or None to drop it."""
    if kind != "aws_access_key":
        return kind
    if not AWS_KEY_ID.fullmatch(value):
        return "aws_secret_key"  # the plugin's second regex: aws ... key = "<40 characters>"
    # its id regex has no boundaries: "AKIAAQAAAA..." inside a base64 blob is not an id
    return kind if value in {m.group() for m in AWS_KEY_ID.finditer(lines)} else None


def find_values(text: str, key_id_seen: bool = False) -> dict[str, str]:
    """Secret value -> kind, from every detector (the first kind found for a value wins).

    ``key_id_seen``: an AWS key id was in the file before an earlier pass replaced it.
    """
    found: dict[str, str] = {}
    lower = lowered(text)
    for plugin, kind, triggers in _plugins():
        lines = trigger_lines(text, lower, triggers)
        for value in plugin.analyze_string(lines) if lines else ():
            value = _whole_value(value, kind, lines)
            value_kind = None if _is_placeholder(value) else _plugin_kind(kind, value, lines)
            if value_kind:
                found.setdefault(value, value_kind)
    if key_id_seen or "aws_access_key" in found.values():  # the plugin has found any id left
        for value in aws_pair_secrets(text):
            found.setdefault(value, "aws_secret_key")
    for near in NEAR_KEYWORD:
        for m in near.finditer(lower):
            value = text[m.start(1) : m.end(1)]
            if value not in found and high_entropy(value) and not _is_placeholder(value):
                found[value] = "high_entropy_secret"
    return found


def replace_values(text: str, found: dict[str, str], placeholder: str) -> tuple[str, dict[str, int]]:
    """Every occurrence of each value replaced (longest first, so no value is cut by a shorter one)."""
    if not found:
        return text, {}
    counts: dict[str, int] = {}
    pattern = re.compile("|".join(re.escape(v) for v in sorted(found, key=lambda v: (-len(v), v))))

    def replace(match: re.Match) -> str:
        kind = found[match.group()]
        counts[kind] = counts.get(kind, 0) + 1
        return placeholder

    return pattern.sub(replace, text), counts
