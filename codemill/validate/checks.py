"""One candidate in, one outcome out: a kept :class:`FileRecord` (secrets redacted) or a
:class:`QuarantineRecord` with the first reason that applies.

Order of the checks (each reason is documented in docs/validate.md): problems found
while reading (``malformed_json``, ``missing_field``, ``symlink_outside_repo``,
``unreadable``), ``empty_content``,
``too_large``, ``binary``, ``not_utf8``, ``unknown_language`` / ``unwanted_language``,
the quality filters of :mod:`.filters`, then ``contaminated``. Cheap checks go first,
so the n-gram lookup only sees files that passed everything else.
"""

from __future__ import annotations

from dataclasses import dataclass

from codemill.records import RAW_LIMIT, FileRecord, QuarantineRecord
from codemill.validate.config import ValidateConfig
from codemill.validate.decontam import Decontaminator
from codemill.validate.filters import quality_problem
from codemill.validate.languages import KNOWN, language_of_path, normalize_language
from codemill.validate.secrets import redact
from codemill.validate.sources import Candidate

BINARY_SNIFF = 8192  # bytes looked at for NUL, as git does


def _text(value: str | None) -> str | None:
    """Any Python string made storable (lone surrogates from bad bytes become U+FFFD)."""
    if value is None:
        return None
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


@dataclass
class Checker:
    config: ValidateConfig
    decontaminator: Decontaminator

    def __post_init__(self):
        wanted = {normalize_language(x) for x in self.config.languages}
        self.wanted = frozenset(wanted) if wanted else KNOWN

    def check(self, c: Candidate) -> tuple[FileRecord | QuarantineRecord, dict[str, int]]:
        """The outcome and the secrets redacted by kind (empty unless kept)."""
        language = normalize_language(c.language) if c.language else language_of_path(c.path or "")

        def reject(reason: str, detail: str) -> tuple[QuarantineRecord, dict]:
            raw = c.raw if c.raw is not None else _raw(c.data)
            return QuarantineRecord(
                reason=reason,
                detail=_text(detail),
                source=_text(c.source),
                repo=_text(c.repo),
                path=_text(c.path),
                language=language,
                raw=_text(raw),
            ), {}

        if c.problem:
            return reject(*c.problem)
        if not c.data:
            return reject("empty_content", "the file is empty")
        size = c.size if c.size is not None else len(c.data)
        if size > self.config.max_file_bytes:
            return reject("too_large", f"{size} bytes > max_file_bytes={self.config.max_file_bytes}")
        text, problem = _decode(c.data)
        if problem:
            return reject(*problem)
        for name, value in (("repo", c.repo), ("path", c.path)):
            if _text(value) != value:
                return reject("not_utf8", f"the {name} is not valid UTF-8")
        if language is None or language not in KNOWN:
            given = f"language label {c.language!r}" if c.language else f"file name {c.path!r}"
            return reject("unknown_language", f"no language codemill knows for the {given}")
        if language not in self.wanted:
            return reject("unwanted_language", f"{language} is not in languages={sorted(self.wanted)}")
        problem = quality_problem(text, c.path, language, self.config)
        if problem:
            return reject(*problem)
        hit = self.decontaminator.find(text)
        if hit:
            task, snippet = hit
            return reject("contaminated", f"{task}: shares {snippet[:120]!r}")
        counts: dict[str, int] = {}
        if self.config.redact_secrets:
            text, counts = redact(text)
        record = FileRecord(
            repo=c.repo,
            path=c.path,
            content=text,
            language=language,
            license=c.license,
            stars=c.stars,
            source=c.source,
            redactions=sum(counts.values()),
        )
        return record.finalize(), counts


def _raw(data: bytes | str | None) -> str | None:
    if data is None:
        return None
    if isinstance(data, bytes):
        return data[: RAW_LIMIT * 4].decode("utf-8", "replace")[:RAW_LIMIT]
    return data[:RAW_LIMIT]


def _decode(data: bytes | str) -> tuple[str, tuple[str, str] | None]:
    """Text of the content, or why it is not text (NUL bytes first, then strict UTF-8)."""
    if isinstance(data, str):
        if "\x00" in data[:BINARY_SNIFF]:
            return "", ("binary", f"NUL character within the first {BINARY_SNIFF} characters")
        try:
            data.encode("utf-8")
        except UnicodeEncodeError as e:
            return "", ("not_utf8", f"character {e.start}: {e.reason}")
        return data, None
    if b"\x00" in data[:BINARY_SNIFF]:
        return "", ("binary", f"NUL byte within the first {BINARY_SNIFF} bytes")
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return "", ("not_utf8", f"byte {e.start}: {e.reason} (0x{data[e.start]:02x})")
