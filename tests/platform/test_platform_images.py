"""images/: hadolint's settings keep its rules on, the Dockerfiles keep codemill's own policy,
the locks are exact, and every image reference agrees. (hadolint itself runs in `make lint`.)"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess

import pytest
import yaml
from dockerfile_lint import copied_sources, lint
from k8s_manifests import REPO

DOCKERFILES = ["images/cpu.Dockerfile", "images/cuda.Dockerfile"]
LOCKS = ["images/requirements-cpu.txt", "images/requirements-cuda.txt"]

HADOLINT = os.path.join(REPO, ".venv", "bin", "hadolint")

GOOD = """\
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY constraints.txt .
RUN pip install --no-cache-dir -c constraints.txt torch
FROM python:3.11.14-slim-bookworm
COPY --from=build /opt/venv /opt/venv
USER 10001
HEALTHCHECK NONE
"""


def read(path):
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        return f.read()


def pins(path):
    """{name: version} of a lock file; fails on any line that is not an exact pin."""
    out = {}
    for line in read(path).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", line)
        assert match, f"{path}: {line!r} is not an exact pin"
        name = match.group(1).lower().replace("_", "-")
        assert name not in out, f"{path}: {name} pinned twice"
        out[name] = match.group(2)
    return out


def hadolint(text: str) -> tuple[int, list[str]]:
    """hadolint's exit status on ``text`` with the project's settings, and the rules it reports."""
    out = subprocess.run(
        [HADOLINT, "--config", os.path.join(REPO, "images", "hadolint.yaml"), "--format", "json", "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    return out.returncode, sorted({finding["code"] for finding in json.loads(out.stdout or "[]")})


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_keeps_the_project_policy(dockerfile):
    assert lint(read(dockerfile)) == []


def test_the_policy_and_hadolint_accept_a_minimal_good_dockerfile():
    assert lint(GOOD) == []
    assert hadolint(GOOD) == (0, [])


# What the hand-written rules used to check and hadolint now does: the settings in
# images/hadolint.yaml must keep each of these on, at a level that fails the lint.
@pytest.mark.parametrize(
    "old,new,code",
    [
        ("FROM python:3.11.14-slim-bookworm AS build\n", "FROM python:latest AS build\n", "DL3007"),
        ("FROM python:3.11.14-slim-bookworm AS build\n", "FROM python AS build\n", "DL3006"),
        ("--no-cache-dir ", "", "DL3042"),
        ("USER 10001", "USER 0", "DL3002"),
        (
            "COPY constraints.txt .\n",
            "COPY constraints.txt .\nRUN apt-get update && apt-get install curl && rm -rf /var/lib/apt/lists/*\n",
            "DL3014",
        ),
        (
            "USER 10001\n",
            "RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\nUSER 10001\n",
            "DL3015",
        ),
        (
            "USER 10001\n",
            "RUN apt-get update && apt-get install -y --no-install-recommends curl\nUSER 10001\n",
            "DL3009",
        ),
        ("COPY constraints.txt .\n", "COPY constraints.txt .\nRUN curl -s https://x | sh\n", "DL4006"),
        ("COPY constraints.txt .\n", "COPY constraints.txt .\nENV HF_TOKEN=hf_abc\n", "DL3064"),
    ],
)
def test_hadolint_with_the_project_settings_catches(old, new, code):
    assert old in GOOD
    status, codes = hadolint(GOOD.replace(old, new, 1))
    assert status != 0 and code in codes, codes


@pytest.mark.parametrize(
    "old,new,rule",
    [
        ("FROM python:3.11.14-slim-bookworm AS build\n", "FROM python:latest AS build\n", "pinned-base"),
        ("FROM python:3.11.14-slim-bookworm\nCOPY", "FROM python:3.11-slim\nCOPY", "pinned-base"),
        ("FROM python:3.11.14-slim-bookworm\nCOPY", "FROM python:3.11.14-bookworm\nCOPY", "lean-final"),
        ("USER 10001", "USER root", "non-root"),
        ("USER 10001", "USER 0", "non-root"),
        ("USER 10001\n", "", "non-root"),
        ("HEALTHCHECK NONE\n", "", "healthcheck"),
        ("-c constraints.txt torch", "torch", "pip"),
        ("COPY constraints.txt .\n", "", "pip: constraints.txt"),
        (
            "USER 10001\n",
            "RUN apt-get update && apt-get install -y --no-install-recommends gcc "
            "&& rm -rf /var/lib/apt/lists/*\nUSER 10001\n",
            "lean-final",
        ),
        ("COPY constraints.txt .\n", "COPY constraints.txt .\nADD https://x/y.tgz /y\n", "no-remote-add"),
    ],
)
def test_each_policy_rule_catches_its_violation(old, new, rule):
    assert old in GOOD
    problems = lint(GOOD.replace(old, new, 1))
    assert any(p.startswith(rule) for p in problems), problems


def test_single_stage_dockerfile_is_rejected():
    problems = lint(
        "FROM python:3.11.14-slim-bookworm\nCOPY constraints.txt .\n"
        "RUN pip install --no-cache-dir -c constraints.txt .\nUSER 10001\nHEALTHCHECK NONE\n"
    )
    assert problems == ["multi-stage: a single stage keeps its build tools in the image"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_everything_copied_exists_and_passes_the_dockerignore(dockerfile):
    with open(os.path.join(REPO, dockerfile + ".dockerignore")) as f:
        patterns = [p.strip() for p in f if p.strip() and not p.startswith("#")]

    def included(path):
        keep = True
        for pattern in patterns:
            negate = pattern.startswith("!")
            pattern = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
                keep = negate
        return keep

    sources = copied_sources(read(dockerfile))
    assert "constraints.txt" in sources
    for source in sources:
        if source == "README.md":
            continue  # written by the integrator at the repository root (pyproject's readme)
        assert os.path.exists(os.path.join(REPO, source)), source
        assert included(source.rstrip("/")), f"{source} is excluded by {dockerfile}.dockerignore"


@pytest.mark.parametrize("lock", LOCKS)
def test_locks_pin_every_package_exactly(lock):
    assert pins(lock)


def test_cuda_lock_adds_the_gpu_stack_and_repins_only_what_the_dockerfile_drops():
    codemill = pins("constraints.txt")
    cuda = pins("images/requirements-cuda.txt")
    assert {"deepspeed", "flash-attn", "vllm", "triton", "nvidia-nccl-cu13"} <= set(cuda)
    assert codemill["torch"] == "2.13.0" and "torch" not in cuda  # the CUDA build of the locked torch
    # The lock re-pins exactly the constraints.txt lines the Dockerfile filters out.
    dockerfile = read("images/cuda.Dockerfile")
    dropped = re.search(r"grep -viE '\^\(([a-z|-]+)\)==' constraints\.txt > constraints-cuda\.txt", dockerfile)
    assert dropped, "the CUDA build no longer derives constraints-cuda.txt from constraints.txt"
    assert set(cuda) & set(codemill) == set(dropped.group(1).split("|")) == {"fastapi", "numpy"}
    assert all(cuda[name] != codemill[name] for name in ("fastapi", "numpy"))
    assert "torch==2.13.0" in dockerfile


def test_cpu_image_installs_the_locked_torch_as_the_cpu_build():
    torch = pins("constraints.txt")["torch"]
    install = re.search(
        r"pip install [^\n]*\\\n\s+--extra-index-url (\S+) \"torch==([^\"]+)\"", read("images/cpu.Dockerfile")
    )
    assert install, "the CPU image no longer installs torch from PyTorch's CPU index"
    assert install.group(1) == "https://download.pytorch.org/whl/cpu"
    assert install.group(2) == f"{torch}+cpu"  # satisfies the lock's torch==X, without PyPI's CUDA wheels


def test_cpu_lock_only_adds_to_constraints():
    assert set(pins("images/requirements-cpu.txt")).isdisjoint(pins("constraints.txt"))


def test_image_names_are_the_ones_the_components_and_chart_use():
    from components import _common

    registry = _common.REGISTRY
    makefile = read("Makefile")
    values = yaml.safe_load(read("charts/codemill/values.yaml"))
    assert values["image"]["registry"] == "ghcr.io/codemill" and values["image"]["tag"] == ""
    for flavor in ("cpu", "cuda"):
        assert f"images/{flavor}.Dockerfile" in makefile
        assert f"/codemill-{flavor}:" in makefile
        assert getattr(_common, f"{flavor.upper()}_IMAGE") == f"{registry}/codemill-{flavor}:{_common.TAG}"
    compiled = next(yaml.safe_load_all(read("pipelines/compiled/codemill.yaml")))
    images = {e["container"]["image"] for e in compiled["deploymentSpec"]["executors"].values()}
    assert images and images <= {"ghcr.io/codemill/codemill-cpu:0.1.0", "ghcr.io/codemill/codemill-cuda:0.1.0"}
