"""The tasks stage: execution-verified training tasks mined from the corpus (docs/tasks.md).

Every top-level Python function with a docstring is a candidate. Static checks (shape,
names it needs, the impurity screen of :mod:`codemill.tasks.screen`, decontamination)
come first; inputs come from its doctests and the literal calls in its repository; the
reference then runs in the sandbox under several PYTHONHASHSEED values, and what it
returns (never what an example claims) becomes the expected output. Survivors become
``generate``, ``output`` and ``input`` tasks, deduplicated by normalized source across
the whole corpus and split train/heldout by repository hash.

Steps (``codemill/steps.py``): ``tasks-shard`` (per shard of repositories) and
``tasks-finish`` (once). :mod:`codemill.tasks.score` is the one scorer of these tasks,
used by ``codemill eval --benchmark tasks``, synth and rl.
"""

from codemill.tasks.config import KINDS, TasksConfig

__all__ = ["KINDS", "TasksConfig"]
