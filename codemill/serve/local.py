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
    """The chart's teacher Deployment (charts/codemill/templates/teacher) and its Service.

    The teacher's weights are copied from S3 by its init container (``fetch-model``), so the
    model reference lives in that init container's ``model_env`` variable (which its args
    read as ``$(CODEMILL_MODEL_URI)``: docs/pipelines.md, "The teacher served inside the step").
    """

    namespace: str
    deployment: str
    container: str = "fetch-model"
    model_env: str = "CODEMILL_MODEL_URI"
    service_url: str = ""
    timeout_s: float = 1800.0
    poll_s: float = 10.0


def _init_model(api, target) -> str | None:
    dep = api.read_namespaced_deployment(target.deployment, target.namespace)
    for c in dep.spec.template.spec.init_containers or []:
        if c.name == target.container:
            return next((e.value for e in c.env or [] if e.name == target.model_env), None)
    raise LookupError(f"deployment {target.namespace}/{target.deployment} has no init container {target.container!r}")


def _set_init_model(api, target, model: str) -> int:
    """kube.set_model's patch, on the init container that fetches the weights; returns the generation."""
    from codemill.serve import kube

    patch = {
        "spec": {
            "template": {
                "metadata": {"annotations": {kube.MODEL_ANNOTATION: model}},
                "spec": {
                    "initContainers": [{"name": target.container, "env": [{"name": target.model_env, "value": model}]}]
                },
            }
        }
    }
    return api.patch_namespaced_deployment(target.deployment, target.namespace, patch).metadata.generation


@contextlib.contextmanager
def kube_teacher(model: str, target: TeacherDeployment, api=None) -> Iterator[dict]:
    """Roll the teacher Deployment to ``model`` for the block (waiting as a rollout does, with
    :func:`codemill.serve.kube.wait_rollout`); put the previous model back after it."""
    from codemill.serve import kube

    api = api if api is not None else kube.apps_api()
    where = kube.KubeTarget(target.namespace, target.deployment, target.container, target.model_env)
    previous = _init_model(api, where)
    rolled = kube.wait_rollout(api, where, _set_init_model(api, where, model), target.timeout_s, target.poll_s)
    try:
        yield {
            "url": target.service_url,
            "model": model,
            "previous_model": previous,
            "rollout": rolled,
            "target": "kubernetes",
        }
    finally:
        if previous and previous != model:
            _set_init_model(api, where, previous)  # the teacher goes back to what it served (no wait)
