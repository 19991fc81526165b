"""Instruct-mode prompts (``--prompt-style chat``): the EvalPlus/Magicoder instruction around a
HumanEval prompt, rendered with the model's chat template, and the code taken back out.

EvalPlus (``evalplus/provider/utility.py``, ``make_raw_chat_prompt``), the harness Magicoder
reports its HumanEval(+) numbers with: the user turn asks for "a self-contained Python
script ... in a markdown code block" around the prompt in a fence; the assistant turn is
prefilled with "Below is a Python script ..." and an open ```python fence, so generation
starts inside the code block and the reply ends at the closing fence. The script the
model writes is appended to HumanEval's prompt when scored (``humaneval.program``): a
full definition redefines the stub, a bare body continues it; either way the prompt's
imports stay in scope.
"""

from __future__ import annotations

import re

INSTRUCTION_PREFIX = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
)
RESPONSE_PREFIX = (
    "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:"
)
FENCE_OPEN = "```python\n"
FENCE_CLOSE = "```"
STOP = (FENCE_CLOSE,)
_FENCED = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def humaneval_turns(prompt: str) -> tuple[list[dict], str]:
    """The user turn and the assistant prefill for one HumanEval prompt (EvalPlus's wording)."""
    user = f"{INSTRUCTION_PREFIX}\n```\n{prompt.strip()}\n```\n"
    return [{"role": "user", "content": user}], f"{RESPONSE_PREFIX}\n{FENCE_OPEN}"


def extract_code(reply: str) -> str:
    """The code of a reply generated after the prefill: the text before the closing fence; when
    the reply opens a fenced block of its own instead, that block's text."""
    if reply.lstrip().startswith("```"):
        blocks = _FENCED.findall(reply)
        return blocks[0] if blocks else ""
    return reply.split(FENCE_CLOSE, 1)[0]
