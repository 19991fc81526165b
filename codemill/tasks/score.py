"""The one scorer of mined tasks: ``codemill eval --benchmark tasks``, synth and rl use it.

API::

    load_tasks(url) -> list[Task]          # a tasks output folder, or Parquet file(s)/glob of its tasks/
    parse_completion(task, completion) -> str | ParseError
    score(tasks, samples, workers=0, sandbox=None, timeout=3.0) -> list[Result]
    score_one(task, completion, sandbox, timeout) -> Result   # one verdict, in this thread (rl, synth)

- ``Task``: one row of ``tasks/*.parquet`` (``task_id``, ``kind``, ``entry_point``,
  ``prompt``, ``reference``, ``tests`` as ``(input, output)`` pairs of source text,
  ``answer``, ``split``, ``repo``, ``path``); ``Task.from_row`` reads a row dict.
- ``parse_completion`` turns a completion into what gets checked, with no code run:

  - ``generate``: a program defining the entry point. A fenced ```python block that
    defines it is used with the prompt's context (the lines before the signature); else
    the completion continues the prompt (HumanEval-style); else a bare completion that
    defines the entry point is used with the context;
  - ``output``: the source of a Python literal: the completion (or its last line, fences
    removed) is a literal, or ``assert f(...) == <literal>``;
  - ``input``: the argument source: ``assert f(<args>) == ...``, ``f(<args>)`` or bare
    ``<args>``, every argument a literal.

  A completion that gives none of these is a ``ParseError`` (``str(error)`` says why).
- ``score(tasks, samples)``: ``samples`` are ``(task_id, completion)`` pairs; one
  ``Result`` per sample, in order: ``task_id``, ``completion``, ``passed``, ``fraction``
  (the share of test cases passed: a generate task has several, output/input one; 0.0 on a
  parse error: rl's ``fraction``/``weighted`` rewards), ``detail`` (``passed``, ``failed:
  wrong answer (case 2)``, ``parse error: ...``, ``timed out (case 1)``), ``kind``.

How each kind is checked:

- ``generate``: the program runs in the sandbox (``codemill.verify.score_calls``), its
  entry point called on every test input; each value is compared with the expected one
  in this process with ``strict_equal`` (exact types);
- ``output``: ``ast.literal_eval`` of the answer, compared with the expected value with
  ``strict_equal`` here; nothing runs;
- ``input``: the reference runs in the sandbox on the given arguments
  (``codemill.verify.run_calls``) and its return value is compared here with the output
  the prompt shows; any arguments that give that output pass.

Untrusted text is only parsed in this process (``ast``); it runs only in the sandbox.
``sandbox`` is a started ``codemill.evaluate.sandbox.Sandbox`` (PYTHONHASHSEED 0 is what
expected outputs are compared under; the default is ``codemill.verify.default_sandbox("0")``);
``workers`` sandboxed runs go in parallel (0 = the CPUs this process may use).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

from codemill import io
from codemill.evaluate.config import cpu_budget
from codemill.evaluate.sandbox import Sandbox, run_parallel
from codemill.stage import InputError
from codemill.tasks.inputs import argument_source
from codemill.verify import default_sandbox, run_calls, score_calls, strict_equal

FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
MAX_ARGUMENT_CHARS = 20_000
MAX_COMPLETION_CHARS = 200_000  # parsing is the only thing done with a completion here; bound its cost


@dataclass(frozen=True)
class Task:
    task_id: str
    kind: str
    entry_point: str
    prompt: str
    reference: str
    tests: tuple[tuple[str, str], ...]
    answer: str = ""
    split: str = "train"
    repo: str = ""
    path: str = ""

    @classmethod
    def from_row(cls, row: dict) -> Task:
        tests = tuple((t["input"], t["output"]) for t in json.loads(row["tests"]))
        return cls(
            row["task_id"],
            row["kind"],
            row["entry_point"],
            row["prompt"],
            row["reference"],
            tests,
            row.get("answer") or "",
            row.get("split") or "train",
            row.get("repo") or "",
            row.get("path") or "",
        )


@dataclass(frozen=True)
class ParseError:
    reason: str

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Result:
    task_id: str
    completion: str
    passed: bool
    fraction: float
    detail: str
    kind: str = ""


def load_tasks(url: str) -> list[Task]:
    """Tasks of a tasks output folder (``tasks/*.parquet``), or of Parquet file(s) or a glob."""
    pattern = url if url.endswith(".parquet") or any(c in url for c in "*?[") else io.join(url, "tasks", "*.parquet")
    urls = io.expand(pattern)
    if not urls:
        raise InputError(f"{url}: no tasks Parquet files (expected the tasks stage's output folder)")
    tasks = []
    for u in urls:
        table = io.read_parquet(u)
        missing = [
            c for c in ("task_id", "kind", "entry_point", "prompt", "reference", "tests") if c not in table.column_names
        ]
        if missing:
            raise InputError(f"{u}: not a tasks file: missing column(s) {', '.join(missing)}")
        for number, row in enumerate(table.to_pylist()):
            try:
                tasks.append(Task.from_row(row))
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise InputError(f"{u}: row {number}: unreadable tests ({e})") from e
    return tasks


# ---------------------------------------------------------------------------- parsing


def _fenced(completion: str) -> list[str]:
    return [m.group(1) for m in FENCE.finditer(completion)]


def _defines(source: str, name: str) -> bool:
    """Whether the source compiles (compiled only: nothing runs here) and defines ``name`` at top level."""
    try:
        tree = ast.parse(source)
        compile(tree, "<completion>", "exec", dont_inherit=True)  # 'return' outside a function and the like
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name for n in tree.body)


def prompt_context(task: Task) -> str:
    """The generate prompt's lines before the entry point's signature (imports, helpers)."""
    tree = ast.parse(task.prompt)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == task.entry_point)
    return "\n".join(task.prompt.splitlines()[: node.lineno - 1])


def _program(task: Task, completion: str) -> str | ParseError:
    context = prompt_context(task)
    for block in _fenced(completion):
        if _defines(block, task.entry_point):
            return f"{context}\n\n{block}" if context else block
    continued = task.prompt + completion
    if _defines(continued, task.entry_point):
        return continued
    if _defines(completion, task.entry_point):
        return f"{context}\n\n{completion}" if context else completion
    return ParseError(
        f"no definition of {task.entry_point} (neither a continuation of the prompt nor a "
        "fenced python block that defines it)"
    )


def _pieces(completion: str) -> list[str]:
    """The texts an answer may be: the fenced blocks, the whole completion, its last line."""
    texts = [b.strip() for b in _fenced(completion)] + [completion.strip()]
    lines = [line.strip() for line in completion.strip().splitlines() if line.strip() and not line.startswith("```")]
    return [t for t in dict.fromkeys(texts + lines[-1:]) if t]


def _assert_parts(text: str, name: str) -> tuple[ast.AST, ast.AST] | None:
    """(left, right) of ``assert <left> == <right>``."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if len(tree.body) == 1 and isinstance(tree.body[0], ast.Assert):
        test = tree.body[0].test
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
            return test.left, test.comparators[0]
    return None


def _literal(node_or_text) -> bool:
    try:
        ast.literal_eval(node_or_text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _output_answer(task: Task, completion: str) -> str | ParseError:
    for text in _pieces(completion):
        parts = _assert_parts(text, task.entry_point)
        if parts and _literal(parts[1]):
            return ast.unparse(parts[1])
        if len(text) <= MAX_ARGUMENT_CHARS and _literal(text):
            return text
    return ParseError("not a Python literal (nor assert f(...) == <literal>)")


def _call_arguments(node: ast.AST, name: str) -> str | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name:
        return argument_source(node, MAX_ARGUMENT_CHARS)
    return None


def _input_answer(task: Task, completion: str) -> str | ParseError:
    name = task.entry_point
    for text in _pieces(completion):
        parts = _assert_parts(text, name)
        if parts:
            args = _call_arguments(parts[0], name)
            if args is not None:
                return args
            continue
        for source in (text, f"{name}({text})"):
            try:
                node = ast.parse(source, mode="eval").body
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
            args = _call_arguments(node, name)
            if args is not None:
                return args
    return ParseError(f"not arguments of {name} made of Python literals")


def parse_completion(task: Task, completion: str) -> str | ParseError:
    """What the completion answers (see the module docstring), or why it answers nothing."""
    if not isinstance(completion, str):
        return ParseError("the completion is not text")
    if len(completion) > MAX_COMPLETION_CHARS:
        return ParseError(f"the completion is longer than {MAX_COMPLETION_CHARS} characters")
    if task.kind == "generate":
        return _program(task, completion)
    if task.kind == "output":
        return _output_answer(task, completion)
    if task.kind == "input":
        return _input_answer(task, completion)
    return ParseError(f"unknown task kind {task.kind!r}")


# ---------------------------------------------------------------------------- scoring


def _expected(task: Task) -> list[tuple[str, object]]:
    return [(given, ast.literal_eval(output)) for given, output in task.tests]


def score_one(task: Task, completion: str, sandbox: Sandbox, timeout: float) -> Result:
    """The verdict on one completion (see the module docstring)."""
    parsed = parse_completion(task, completion)
    if isinstance(parsed, ParseError):
        return Result(task.task_id, completion, False, 0.0, f"parse error: {parsed}", task.kind)
    cases = _expected(task)
    if task.kind == "generate":
        verdict = score_calls(parsed, task.entry_point, cases, timeout, sandbox=sandbox)
        return Result(
            task.task_id,
            completion,
            verdict.passed,
            verdict.passed_cases / max(verdict.total, 1),
            verdict.detail,
            task.kind,
        )
    expected = cases[0][1]
    if task.kind == "output":
        ok = strict_equal(ast.literal_eval(parsed), expected)
        return Result(
            task.task_id, completion, ok, float(ok), "passed" if ok else "failed: wrong answer (case 1)", task.kind
        )
    result = run_calls(task.reference, task.entry_point, [parsed], timeout, sandbox=sandbox)[0]
    if result.status != "ok":
        detail = (
            "timed out (case 1)"
            if result.status == "timeout"
            else f"failed: {result.status}: {result.detail[:200]} (case 1)"
        )
        return Result(task.task_id, completion, False, 0.0, detail, task.kind)
    ok = strict_equal(result.value, expected)
    return Result(
        task.task_id, completion, ok, float(ok), "passed" if ok else "failed: wrong answer (case 1)", task.kind
    )


def score(
    tasks: list[Task],
    samples: list[tuple[str, str]],
    workers: int = 0,
    sandbox: Sandbox | None = None,
    timeout: float = 3.0,
) -> list[Result]:
    """One Result per ``(task_id, completion)``, in order; an unknown task_id fails with that detail."""
    by_id = {t.task_id: t for t in tasks}
    box = sandbox or default_sandbox("0")

    def one(sample: tuple[str, str]) -> Result:
        task_id, completion = sample
        task = by_id.get(task_id)
        if task is None:
            return Result(task_id, completion, False, 0.0, f"failed: unknown task_id {task_id!r}")
        return score_one(task, completion, box, timeout)

    return run_parallel(one, list(samples), workers or cpu_budget(), "tasks: score")
