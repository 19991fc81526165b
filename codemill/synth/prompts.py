"""The prompts the teacher gets (quoted in docs/synth.md) and the request bodies they go in.

The oss-instruct prompt follows Magicoder's (a seed snippet "for inspiration", a
self-contained problem, a correct solution) and adds SelfCodeAlign's tests section; the
solution is always Python, whatever the seed's language, because the sandbox runs Python.
"""

from __future__ import annotations

OSS_INSTRUCT = """\
You are exceptionally skilled at crafting high-quality programming problems and offering precise solutions.

Please gain inspiration from the following random code snippet to create a high-quality programming problem \
that is solved in Python. Present your output in three distinct sections: [Problem], [Solution] and [Tests].

Code snippet for inspiration:
```{language}
{snippet}
```

Guidelines for each section:
1. [Problem]: This should be **completely self-contained**, providing all the contextual information one needs \
to understand and solve the problem. Assume common programming knowledge, but ensure that any specific context, \
variables, or code snippets pertinent to this problem are explicitly included. Name the function or class to write.
2. [Solution]: Offer a comprehensive, **correct** solution in exactly one ```python code block. Use only the \
Python standard library; no input(), files or network.
3. [Tests]: Exactly one ```python code block of plain `assert` statements that check the solution on typical \
and edge cases. It is run directly after the solution, so it must not redefine the solution or import it.
"""

GENERATE = """\
Complete the following Python function so that it does what its docstring says.

```python
{prompt}```

You may reason first. End your answer with the complete function (with the imports and helpers it needs) \
in one ```python code block."""

CODE_TASK = """\
{prompt}
You may reason first. End your answer with the completed assertion (or just the Python literal or arguments \
that replace ??) in one ```python code block."""

STDIO = """\
Solve the following programming problem in Python 3.

{statement}

Your program reads standard input and writes standard output. You may reason first. End your answer with the \
whole program in one ```python code block."""


def oss_instruct(language: str, snippet: str) -> str:
    return OSS_INSTRUCT.format(language=language, snippet=snippet)


def task(kind: str, prompt: str) -> str:
    """The user turn for a mined task of ``kind`` (generate, output, input)."""
    return GENERATE.format(prompt=prompt) if kind == "generate" else CODE_TASK.format(prompt=prompt)


def stdio(statement: str) -> str:
    return STDIO.format(statement=statement.strip())


def body(model: str, user: str, *, temperature: float, max_tokens: int, seed: int) -> dict:
    """A chat request; ``seed`` tells samples of one prompt apart (and so their cache keys)."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": user}],
        "temperature": temperature,
        "max_tokens": max_tokens,
        "seed": seed,
    }
