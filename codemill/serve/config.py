"""The server's knobs: one dataclass, every field a ``codemill serve`` flag."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from codemill.stage import InputError

MODEL_ENV = "CODEMILL_MODEL_URI"


@dataclass
class ServeConfig:
    model: str = field(
        default="",
        metadata={
            "help": "model to serve: a local Hugging Face directory, an s3:// prefix, or an MLflow registry "
            "reference (models:/codemill@champion, models:/codemill/3); empty means $" + MODEL_ENV
        },
    )
    host: str = field(default="127.0.0.1", metadata={"help": "interface to listen on (0.0.0.0 in a container)"})
    port: int = field(default=8000, metadata={"help": "TCP port to listen on"})
    served_model_name: str = field(
        default="codemill",
        metadata={"help": "the model id in /v1/models; a request's `model`, when given, must equal it"},
    )
    api_key: str = field(
        default="",
        metadata={
            "help": "require `Authorization: Bearer KEY` on every route but /health and /ready "
            "(prefer --api-key-env: a flag is visible in the process list)"
        },
    )
    api_key_env: str = field(
        default="CODEMILL_API_KEY",
        metadata={
            "help": "environment variable holding the API key, read when --api-key is empty; unset or empty "
            "means no authentication"
        },
    )
    backend: str = field(
        default="hf",
        metadata={
            "help": "hf: Hugging Face transformers with codemill's batcher (CPU or GPU); vllm: vLLM's engine "
            "(GPU image only)",
            "choices": ["hf", "vllm"],
        },
    )
    device: str = field(
        default="auto", metadata={"help": "torch device for the hf backend; auto picks cuda when present"}
    )
    dtype: str = field(
        default="auto",
        metadata={
            "help": "weights dtype; auto is bfloat16 on GPU and float32 on CPU",
            "choices": ["auto", "float32", "bfloat16", "float16"],
        },
    )
    max_batch: int = field(default=32, metadata={"help": "most sequences (requests x n) decoded together in one batch"})
    batch_wait_ms: float = field(
        default=5.0, metadata={"help": "how long the batcher waits for more requests after the first one arrives"}
    )
    admit_ratio: float = field(
        default=0.3,
        metadata={
            "help": "while decoding, let waiting requests join once they number this share of the running "
            "sequences (joining costs a prefill pass, so newcomers join together)"
        },
    )
    admit_max_wait_steps: int = field(
        default=8, metadata={"help": "...or once this many decode steps passed since the last join"}
    )
    batching: bool = field(
        default=True,
        metadata={
            "help": "batch concurrent requests; --no-batching serves one request at a time (the benchmark baseline)"
        },
    )
    max_tokens_cap: int = field(default=512, metadata={"help": "largest `max_tokens` a request may ask for"})
    default_max_tokens: int = field(
        default=16, metadata={"help": "`max_tokens` when a request leaves it out (OpenAI's default)"}
    )
    n_cap: int = field(default=8, metadata={"help": "largest `n` (choices per request) a request may ask for"})
    max_prompts: int = field(
        default=64,
        metadata={"help": "most prompts in one /v1/completions request (`prompt` as a list); each is its own sequence"},
    )
    context_length: int = field(
        default=0, metadata={"help": "prompt + max_tokens limit in tokens; 0 means the model's max_position_embeddings"}
    )
    max_body_bytes: int = field(default=1_048_576, metadata={"help": "largest request body accepted (HTTP 413 above)"})
    max_waiting: int = field(default=1024, metadata={"help": "requests allowed to wait for a batch before HTTP 503"})
    graceful_shutdown_s: float = field(
        default=30.0,
        metadata={
            "help": "on SIGTERM, how long in-flight requests may take to finish; those still running then get "
            "HTTP 503 (streams: an error event and [DONE]) and the server stops"
        },
    )
    header_timeout_s: float = field(
        default=10.0,
        metadata={
            "help": "a connection must send a complete request line and headers within this many seconds of "
            "opening (or of its previous response), else HTTP 408 and closed (slow clients)"
        },
    )
    body_timeout_s: float = field(
        default=60.0,
        metadata={"help": "a request body must arrive within this many seconds of its headers, else HTTP 408"},
    )
    torch_threads: int = field(default=0, metadata={"help": "torch CPU threads; 0 keeps torch's default"})
    gpu_memory_utilization: float = field(
        default=0.9, metadata={"help": "vllm backend: share of GPU memory vLLM may take"}
    )
    cache_dir: str = field(
        default="",
        metadata={"help": "where s3:// and models:/ models are downloaded; empty means a temporary directory"},
    )
    tracking_uri: str = field(
        default="",
        metadata={"help": "MLflow tracking/registry URI for models:/ references; empty means $MLFLOW_TRACKING_URI"},
    )
    access_log: bool = field(default=True, metadata={"help": "log one line per HTTP request"})

    def resolved_model(self) -> str:
        model = self.model or os.environ.get(MODEL_ENV, "")
        if not model:
            raise InputError(f"no model to serve: pass --model or set ${MODEL_ENV}")
        return model

    def resolved_api_key(self) -> str:
        return self.api_key or (os.environ.get(self.api_key_env, "") if self.api_key_env else "")

    def redacted(self) -> ServeConfig:
        """The config as it may be logged: the API key never reaches stdout or MLflow."""
        return dataclasses.replace(self, api_key="***" if self.api_key else "")

    def check(self) -> None:
        for name in (
            "max_batch",
            "max_tokens_cap",
            "default_max_tokens",
            "n_cap",
            "max_prompts",
            "max_body_bytes",
            "max_waiting",
        ):
            if getattr(self, name) < 1:
                raise InputError(f"serve config: {name} must be >= 1, got {getattr(self, name)}")
        if self.default_max_tokens > self.max_tokens_cap:
            raise InputError(
                f"serve config: default_max_tokens ({self.default_max_tokens}) exceeds "
                f"max_tokens_cap ({self.max_tokens_cap})"
            )
        if self.header_timeout_s <= 0 or self.body_timeout_s <= 0 or self.graceful_shutdown_s < 0:
            raise InputError("serve config: header_timeout_s and body_timeout_s must be > 0, graceful_shutdown_s >= 0")
        if self.batch_wait_ms < 0 or self.context_length < 0:
            raise InputError("serve config: batch_wait_ms and context_length must be >= 0")
