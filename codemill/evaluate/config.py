"""The evaluate stage's one config dataclass; every field is also a ``codemill eval`` flag."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from codemill.stage import InputError

# Benchmarks scored by executing code, then the one scored against held-out repositories.
CODE_BENCHMARKS = ("humaneval", "humaneval_infill", "stdio")
BENCHMARKS = CODE_BENCHMARKS + ("heldout",)
# What `codemill eval --samples` can score: the code benchmarks, and the tasks stage's mined tasks (--tasks DIR).
SAMPLE_BENCHMARKS = CODE_BENCHMARKS + ("tasks",)


@dataclass
class EvalConfig:
    benchmarks: list[str] = field(
        default_factory=lambda: list(BENCHMARKS),
        metadata={
            "help": "benchmarks to run: humaneval (pass@k), humaneval_infill (single-line infilling, "
            "executed), stdio (stdin/stdout problems), heldout (FIM exact match + perplexity "
            "on pack's held-out repositories)",
            "choices": BENCHMARKS,
        },
    )
    limit: int = field(
        default=0,
        metadata={
            "help": "problems per code benchmark, the first N in order (0 = all); infilling takes the "
            "lines of the first N HumanEval problems"
        },
    )
    n_samples: int = field(
        default=0,
        metadata={
            "help": "sampled completions per problem (humaneval, stdio) for pass@k at --temperature; "
            "0 = greedy pass@1 only"
        },
    )
    temperature: float = field(default=0.8, metadata={"help": "sampling temperature for --n-samples"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling threshold for --n-samples"})
    k: list[int] = field(
        default_factory=lambda: [1, 10, 100],
        metadata={"help": "k values for pass@k; a k is reported only when every task has >= k samples"},
    )
    prompt_style: str = field(
        default="completion",
        metadata={
            "help": "completion: the model continues each prompt (base models); chat: instruct models, the "
            "EvalPlus/Magicoder instruction through the model's chat template, the code block taken from "
            "the reply (humaneval, and the --tasks held-out split)",
            "choices": ("completion", "chat"),
        },
    )
    max_new_tokens: int = field(default=384, metadata={"help": "generation length limit per completion"})
    batch_size: int = field(default=16, metadata={"help": "prompts per generation batch"})
    device: str = field(default="auto", metadata={"help": "torch device for generation (auto = cuda if available)"})
    dtype: str = field(
        default="auto",
        metadata={"help": "model dtype: auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16, float16"},
    )
    threads: int = field(
        default=0,
        metadata={
            "help": "CPU threads for generation (0 = automatic: 1 for models under 100M parameters on "
            "CPU, torch's default otherwise)"
        },
    )
    timeout: float = field(
        default=3.0,
        metadata={"help": "wall seconds per sandboxed run (per test case for stdio); CPU limit is this + 1"},
    )
    workers: int = field(
        default=0,
        metadata={"help": "parallel sandboxed runs (0 = the CPUs this process may use, cgroup quota included)"},
    )
    memory_mb: int = field(default=1024, metadata={"help": "address-space limit per sample, MiB"})
    output_bytes: int = field(default=2048, metadata={"help": "bytes of each sample's stdout/stderr kept"})
    require_isolation: bool = field(
        default_factory=lambda: os.environ.get("_KFP_RUNTIME") == "true",
        metadata={
            "help": "fail instead of running samples when a sandbox layer (namespaces, private user "
            "namespace, Landlock) is unavailable; on by default inside a KFP pod on a cluster "
            "(_KFP_RUNTIME=true), where untrusted code must never run half-isolated"
        },
    )
    sandbox_python: str = field(
        default="",
        metadata={
            "help": "interpreter that runs samples (default: the first of this Python, its base, "
            "python3 on PATH that works as the sandbox user)"
        },
    )
    sandbox_url: str = field(
        default="",
        metadata={
            "help": "send every execution to the sandbox service at this URL (codemill sandbox serve; the "
            "pipeline sets it on a cluster) instead of a sandbox in this process"
        },
    )
    sandbox_api_key_env: str = field(
        default="CODEMILL_SANDBOX_API_KEY",
        metadata={"help": "environment variable holding the sandbox service's API key (with --sandbox-url)"},
    )
    stdio_problems: str = field(
        default="",
        metadata={
            "help": "JSONL of stdin/stdout problems (LiveCodeBench or rStar-Coder layout); "
            "default: the set shipped with codemill"
        },
    )
    heldout_spans: int = field(
        default=256, metadata={"help": "random spans from pack's held-out documents for FIM exact match"}
    )
    fim_span_lines: int = field(default=3, metadata={"help": "a held-out span covers 1..N whole lines"})
    ppl_sequences: int = field(
        default=64, metadata={"help": "validation sequences (pack's val/tokens.npy) for perplexity"}
    )
    seed: int = field(default=0, metadata={"help": "seed for sampling and span choice"})

    def ensure_valid(self) -> EvalConfig:
        unknown = sorted(set(self.benchmarks) - set(BENCHMARKS))
        if unknown or not self.benchmarks:
            raise InputError(f"benchmarks {unknown or '[]'}: expected some of {', '.join(BENCHMARKS)}")
        checks = [
            (self.limit >= 0, "limit must be >= 0"),
            (self.n_samples >= 0, "n_samples must be >= 0"),
            (self.temperature > 0 or self.n_samples == 0, "temperature must be > 0 when n_samples > 0"),
            (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (bool(self.k) and min(self.k) >= 1, "k values must be >= 1"),
            (self.max_new_tokens >= 1, "max_new_tokens must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.timeout > 0, "timeout must be > 0"),
            (self.workers >= 0 and self.threads >= 0, "workers and threads must be >= 0"),
            (self.memory_mb >= 64, "memory_mb must be >= 64"),
            (self.fim_span_lines >= 1, "fim_span_lines must be >= 1"),
            (self.prompt_style in ("completion", "chat"), "prompt_style must be completion or chat"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"evaluate config: {message}")
        return self

    @property
    def parallel_runs(self) -> int:
        return self.workers or cpu_budget()


def cpu_budget() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota (a pod's CPU
    limit), which os.cpu_count() does not see."""
    cpus = len(os.sched_getaffinity(0))
    for quota_file, period_file in (
        ("/sys/fs/cgroup/cpu.max", None),
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    ):
        try:
            with open(quota_file) as f:
                fields = f.read().split()
            if period_file:
                with open(period_file) as f:
                    fields.append(f.read().strip())
            if fields[0] in ("max", "-1"):
                continue
            return max(1, min(cpus, int(fields[0]) // int(fields[-1])))
        except (OSError, IndexError, ValueError):
            continue
    return cpus
