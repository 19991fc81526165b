"""Reading a teacher's answer (text only: nothing here runs it; ``ast.parse`` executes nothing).

- A ``<think>...</think>`` block is reasoning: it stays in the stored answer but code
  blocks inside it never count. An answer whose reasoning never closes (truncated) has
  no final part.
- Code blocks are fenced ```python (or ```py / ```python3).
- oss-instruct answers have the sections ``[Problem]``, ``[Solution]`` (exactly one python
  block) and ``[Tests]`` (one python block with at least one ``assert`` outside any
  function or class body: asserts in a function nobody calls check nothing).
- distill answers: the solution is the last python block after the reasoning.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
FENCE = re.compile(r"^[ \t]*```[ \t]*(python3?|py)[ \t]*\n(.*?)^[ \t]*```[ \t]*$", re.DOTALL | re.MULTILINE | re.I)
HEADER = re.compile(r"^[#>*\s]*\[(problem(?: description)?|solution|tests?)\][*:\s]*$", re.I | re.MULTILINE)
_SECTIONS = {"problem": "problem", "solution": "solution", "test": "tests", "tests": "tests"}
_BODIES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


class Unusable(ValueError):
    """An answer that cannot be used: ``reason`` is the quarantine reason, ``str`` the detail."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Written:
    """An oss-instruct answer's parts."""

    problem: str
    solution: str
    tests: str


def final_part(answer: str) -> str:
    """The answer without its reasoning; Unusable when a ``<think>`` never closes."""
    without = THINK.sub("", answer)
    if "<think>" in without:
        raise Unusable("unparseable", "the <think> block never closes (the answer was cut off?)")
    return without


def python_blocks(text: str) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(text)]


def check_syntax(code: str, what: str) -> None:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError) as e:
        raise Unusable("unparseable", f"the {what} is not valid Python: {e}") from None


def last_python_block(answer: str) -> str:
    """distill: the solution is the last python block after the reasoning."""
    blocks = python_blocks(final_part(answer))
    if not blocks:
        raise Unusable("unparseable", "no ```python block after the reasoning")
    return blocks[-1]


def split_sections(text: str) -> dict[str, str]:
    """``{"problem"|"solution"|"tests": body}`` from bracketed headers (first of each kind)."""
    marks = list(HEADER.finditer(text))
    found: dict[str, str] = {}
    for i, m in enumerate(marks):
        name = _SECTIONS[m.group(1).lower().split()[0]]
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        found.setdefault(name, text[m.end() : end])
    return found


def top_level_asserts(code: str) -> int:
    """Asserts that run when the block runs: not inside a def, class or lambda."""
    count, todo = 0, list(ast.iter_child_nodes(ast.parse(code)))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Assert):
            count += 1
        if not isinstance(node, _BODIES):
            todo.extend(ast.iter_child_nodes(node))
    return count


def parse_written(answer: str) -> Written:
    """The problem, solution and tests of an oss-instruct answer, or Unusable with the reason."""
    parts = split_sections(final_part(answer))
    if "problem" not in parts or "solution" not in parts:
        missing = [s for s in ("problem", "solution") if s not in parts]
        raise Unusable("unparseable", f"no [{'] or ['.join(s.capitalize() for s in missing)}] section")
    problem = parts["problem"].strip()
    if not problem:
        raise Unusable("unparseable", "the [Problem] section is empty")
    blocks = python_blocks(parts["solution"])
    if len(blocks) != 1:
        raise Unusable("unparseable", f"the [Solution] section has {len(blocks)} ```python blocks, not 1")
    check_syntax(blocks[0], "solution")
    if "tests" not in parts:
        raise Unusable("no_tests", "no [Tests] section")
    tests = python_blocks(parts["tests"])
    if len(tests) != 1:
        raise Unusable("no_tests", f"the [Tests] section has {len(tests)} ```python blocks, not 1")
    check_syntax(tests[0], "tests block")
    if not top_level_asserts(tests[0]):
        raise Unusable("no_tests", "the [Tests] block has no assert that runs (none outside a function body)")
    return Written(problem, blocks[0], tests[0])
