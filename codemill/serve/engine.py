"""The interfaces between the HTTP layer and the model: ``Engine``, and the batcher's ``BatchHooks``.

An engine takes :class:`~codemill.serve.batching.Job`s and answers each through the job's
event queue (``Delta`` / ``Finished`` / ``Failed``, posted with ``Job.emit`` from any
thread). Two implement it: :class:`~codemill.serve.batching.Batcher` (codemill's batcher
around the transformers decode loop in ``hf_backend.py``) and
:class:`~codemill.serve.vllm_backend.VLLMEngine` (vLLM schedules). The server depends on
nothing else, so a third backend is one class with these members.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from codemill.serve.batching import Job


@runtime_checkable
class Engine(Protocol):
    """A model server backend, as ``app.ServerState`` uses it."""

    @property
    def tokenizer(self):
        """The model's Hugging Face tokenizer (prompts, chat template, logprob token strings); set by ``load``."""

    @property
    def context_length(self) -> int:
        """Most tokens (prompt + completion) one sequence may hold; set by ``load``."""

    def load(self) -> None:
        """Load the model (called once, off the event loop); raise to fail readiness."""

    def submit(self, job: Job) -> None:
        """Queue ``job`` (on the event loop); raise ``ApiError`` 503 when overloaded or shutting down."""

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the server drained its requests; jobs still queued get ``Failed`` (503)."""


@runtime_checkable
class BatchHooks(Protocol):
    """What the transformers decode loop (``HFBackend.generate``) asks of the batcher between steps."""

    def admit(self, rows_running: int) -> list[Job]:
        """Jobs that may join the running batch now (continuous batching); [] to wait."""

    def retire(self, job: Job) -> None:
        """All of ``job``'s rows are done or dropped."""

    def on_step(self, rows: int) -> None:
        """One decode step over ``rows`` sequences is about to run."""
