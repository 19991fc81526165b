"""serve: the model behind an OpenAI-compatible HTTP API, and the pipeline step that rolls it out.

Server (``codemill serve --model PATH|s3://...|models:/codemill@champion``):

    config.py        ServeConfig: every knob, every one a flag
    model_source.py  local dir / s3:// / MLflow registry reference -> local HF directory
    protocol.py      request validation (4xx naming the field), response and SSE chunk bodies
    prompting.py     prompt and FIM (PSM) token ids with the model's own sentinels
    batching.py      Job, events, the dynamic batcher and its model thread
    hf_backend.py    transformers decode loop: left-padded prefill, KV cache, per-row sampling
    sampling.py      temperature / top_p / per-request seeded RNG
    textstream.py    incremental detokenization and stop sequences
    vllm_backend.py  vLLM's engine behind the same events (GPU image)
    metrics.py       Prometheus metrics on a per-server registry
    app.py, server.py  routes, auth, body limit, readiness, graceful shutdown, run_server

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
