"""A model served for the length of one pipeline step: the teacher of r1's data stages.

Synth asks its teacher through ``/v1/chat/completions``. In the r1 pipeline
(docs/pipelines.md) the teacher is a model the pipeline itself just trained, so the step
serves it:

- locally (kfp.local, tests): ``codemill serve`` on a free 127.0.0.1 port, the same
  :class:`codemill.serve.smoke.LocalServer` the rollout's local smoke uses, stopped when
  the step ends;
- on a cluster: the chart's teacher Deployment is rolled to the model with the rollout
  code of :mod:`codemill.serve.kube` and waited for; the step then talks to its Service.

A model without a chat template (a base model, or RL from one) cannot answer chat
requests (``codemill serve`` answers 400), so the local copy that is served gets a
plain-text instruction template (DeepSeek-Coder-Instruct's layout, no new tokens, so
the embeddings stay as they are). The model's own files are never changed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

# DeepSeek-Coder-Instruct's turn layout in plain text: no special tokens to add.
PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n' }}"
    "{% elif message['role'] == 'user' %}{{ '### Instruction:\n' + message['content'] + '\n' }}"
    "{% else %}{{ '### Response:\n' + message['content'] + '\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}"
)


def chat_ready_copy(model: str, dest: str, tracking_uri: str = "") -> tuple[str, bool]:
    """A local folder holding ``model`` with a chat template; (folder, template_added)."""
    from transformers import AutoTokenizer

    from codemill.serve.model_source import fetch_model

    local = fetch_model(model, os.path.join(dest, "_fetch"), tracking_uri)
    tokenizer = AutoTokenizer.from_pretrained(local)
    if tokenizer.chat_template:
        return local, False
    copy = os.path.join(dest, "model")
    shutil.copytree(local, copy)
    tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
    tokenizer.save_pretrained(copy)
    return copy, True


@contextlib.contextmanager
def local_teacher(model: str, log_path: str, tracking_uri: str = "", ready_timeout_s: float = 600.0) -> Iterator[dict]:
    """Serve ``model`` on 127.0.0.1 while the block runs; yields {"url", "model", "chat_template_added"}."""
    from codemill.serve.smoke import LocalServer, wait_ready

    env = {"MLFLOW_TRACKING_URI": tracking_uri} if tracking_uri else {}
    with tempfile.TemporaryDirectory(prefix="codemill-teacher-") as tmp:
        served, added = chat_ready_copy(model, tmp, tracking_uri)
        server = LocalServer(served, log_path, env=env)
        with server:
            try:
                wait_ready(server.url, ready_timeout_s, server.alive)
            except (TimeoutError, RuntimeError) as e:
                raise RuntimeError(f"teacher {model}: {e}; its log: {log_path}\n{server.log_tail()}") from e
            yield {"url": server.url, "model": model, "chat_template_added": added, "target": "local"}


@dataclass
class TeacherDeployment:
    """The chart's teacher Deployment (charts/codemill/templates/teacher) and its Service."""

    namespace: str
    deployment: str
    container: str
    model_env: str
    service_url: str
    timeout_s: float = 1800.0
    poll_s: float = 10.0


@contextlib.contextmanager
def kube_teacher(model: str, target: TeacherDeployment, api=None) -> Iterator[dict]:
    """Roll the teacher Deployment to ``model`` for the block; put the previous model back after it."""
    from codemill.serve import kube

    api = api if api is not None else kube.apps_api()
    where = kube.KubeTarget(target.namespace, target.deployment, target.container, target.model_env)
    previous = kube.current_model(api, where)
    rolled = kube.wait_rollout(api, where, kube.set_model(api, where, model), target.timeout_s, target.poll_s)
    try:
        yield {"url": target.service_url, "model": model, "previous_model": previous, "rollout": rolled,
               "target": "kubernetes"}
    finally:
        if previous and previous != model:
            kube.set_model(api, where, previous)  # the teacher goes back to what it served (no wait)
