"""Where the FIM sentinels come from: pack's ``codemill.pack.fim`` when it is installed,
otherwise DeepSeek-Coder's strings (NOTES.md); this is the one place to switch."""

from __future__ import annotations

DEEPSEEK_SENTINELS = ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>")


def sentinels() -> tuple[str, str, str]:
    """(begin, hole, end) in PSM order: ``begin prefix hole suffix end middle``."""
    try:
        from codemill.pack import fim
    except ImportError:
        return DEEPSEEK_SENTINELS
    return fim.FIM_BEGIN, fim.FIM_HOLE, fim.FIM_END


def psm_prompt(prefix: str, suffix: str) -> str:
    begin, hole, end = sentinels()
    return f"{begin}{prefix}{hole}{suffix}{end}"
