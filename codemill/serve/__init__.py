"""serve: the model behind an OpenAI-compatible HTTP API, and the pipeline step that rolls it out.

Server (``codemill serve --model PATH|s3://...|models:/codemill@champion``):

    config.py        ServeConfig: every knob, every one a flag
    model_source.py  local dir / s3:// / MLflow registry reference -> local HF directory
    protocol.py      completions request validation (4xx naming the field), response and SSE chunk bodies
    chat.py          /v1/chat/completions: message validation, chat bodies and chunks
    prompting.py     prompt, FIM (PSM) and chat-template token ids with the model's own special tokens
    engine.py        the Engine protocol both backends implement, and the batcher's hooks
    batching.py      Job, events, the dynamic batcher and its model thread
    hf_backend.py    transformers decode loop: left-padded prefill, KV cache, per-row sampling
    sampling.py      temperature / top_p / per-request seeded RNG
    logprobs.py      logprobs / echo from the logits, OpenAI's logprobs objects
    textstream.py    incremental detokenization and stop sequences
    vllm_backend.py  vLLM's engine behind the same events (GPU image)
    metrics.py       Prometheus metrics on a per-server registry
    tokenizer_api.py /tokenizer_info, /tokenize, /detokenize (lm-eval's remote tokenizer)
    connections.py   uvicorn with a header deadline (slow clients) and an app-level shutdown hook
    bodies.py        request bodies within size (413) and time (408) bounds, refusals the client reads
    responses.py     jobs' events collected into one body or streamed as SSE (both APIs)
    app.py, server.py  routes, auth, readiness, graceful shutdown, run_server

Rollout (``codemill rollout``, the KFP step ``components/serve.py``):

    gate.py      thresholds over evaluate's metrics and train's stats
    registry.py  MLflow Model Registry: register, alias, resolve models:/ references
    kube.py      patch the inference Deployment and wait for the rollout
    smoke.py     smoke requests; a local `codemill serve` child process
    rollout.py   RolloutConfig and rollout(): the step, stats.json, report.md
"""

from codemill.serve.config import ServeConfig
from codemill.serve.gate import DEFAULT_GATE, evaluate_gate
from codemill.serve.rollout import RolloutConfig, rollout

__all__ = ["DEFAULT_GATE", "RolloutConfig", "ServeConfig", "evaluate_gate", "rollout"]
