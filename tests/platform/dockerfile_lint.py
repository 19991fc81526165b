"""codemill's own Dockerfile policy, over ``dockerfile-parse``'s instruction list.

hadolint (``make lint``, settings in images/hadolint.yaml) owns the generic rules: apt
flags and lists, pip's cache, pipefail, latest/untagged bases, a root USER, secrets in
ENV/ARG. What is left here is what hadolint does not check. No Docker engine runs here,
so the images are checked as text. ``lint(text)`` returns the violations:

- ``multi-stage``: at least a build stage and a runtime stage;
- ``pinned-base``: every base image is pinned by digest or an exact version tag, never
  ``latest``;
- ``non-root``: the final stage ends as a numeric non-root USER (Kubernetes can only
  verify runAsNonRoot for numeric users);
- ``lean-final``: the final stage is a slim/runtime base and installs no build tools;
- ``pip``: every ``pip install`` is constrained by a lock file (``-c``: constraints.txt, a
  file derived from it in the build such as constraints-cuda.txt, or an
  images/requirements-*.txt lock); ``constraints.txt`` is copied in and used;
- ``healthcheck``: the final stage states its HEALTHCHECK (``NONE`` is a statement);
- ``no-remote-add``: no ``ADD <url>`` (unverified downloads; hadolint allows them).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field

from dockerfile_parse import DockerfileParser

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
EXACT_TAG = re.compile(r":[^:/@]*\d+\.\d+\.\d+[^:/@]*$")
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|make|cmake|git|curl|wget|cuda-nvcc\S*|\S+-dev(-\S+)?)\b")
LOCK = re.compile(r"(^|/)(constraints(-[a-z0-9]+)?\.txt|requirements-[a-z0-9-]+\.txt)$")


@dataclass
class Stage:
    base: str
    alias: str = ""
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        return [v for i, v in self.instructions if i == instruction]


def stages(text: str) -> list[Stage]:
    with tempfile.NamedTemporaryFile("w", suffix=".Dockerfile") as f:
        f.write(text)
        f.flush()
        structure = DockerfileParser(path=f.name).structure
    out: list[Stage] = []
    for item in structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            parts = value.split()
            parts = [p for p in parts if not p.startswith("--platform")]
            alias = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else ""
            out.append(Stage(parts[0], alias))
        elif instruction != "COMMENT" and out:
            out[-1].instructions.append((instruction, value))
    return out


def _check_pinned(base: str, aliases: set[str]) -> list[str]:
    if base in aliases or base == "scratch":
        return []
    if base.endswith(":latest") or ":" not in base.split("/")[-1] and not DIGEST.search(base):
        return [f"pinned-base: {base} is not pinned (no tag, or latest)"]
    if not (DIGEST.search(base) or EXACT_TAG.search(base.split("@")[0])):
        return [f"pinned-base: {base} needs a digest or an exact version tag"]
    return []


def _pip_commands(run: str) -> list[str]:
    return [c for c in re.split(r"&&|;|\|\|", run) if re.search(r"\bpip3?\s+install\b", c)]


def lint(text: str) -> list[str]:
    all_stages = stages(text)
    if not all_stages:
        return ["no FROM instruction"]
    bad: list[str] = []
    final = all_stages[-1]
    if len(all_stages) < 2:
        bad.append("multi-stage: a single stage keeps its build tools in the image")

    aliases: set[str] = set()
    for stage in all_stages:
        bad += _check_pinned(stage.base, aliases)
        aliases.add(stage.alias)
        for copy in stage.values("COPY"):
            if re.search(r"--from=\S+:latest\b", copy):
                bad.append(f"pinned-base: COPY {copy} takes from a latest image")

    users = final.values("USER")
    user = users[-1].split(":")[0] if users else ""
    if not user.isdigit() or int(user) == 0:
        bad.append(f"non-root: the final stage must end with a numeric non-root USER (got {user or 'none'})")

    if re.search(r"devel|builder|sdk", final.base) or (final.base.startswith("python:") and "slim" not in final.base):
        bad.append(f"lean-final: final base {final.base} is a build image")
    for run in final.values("RUN"):
        if re.search(r"(apt-get|apt|pip3?)\s+install", run) and BUILD_TOOLS.search(run):
            bad.append(f"lean-final: final stage installs build tools: {BUILD_TOOLS.search(run).group(0)}")

    for stage in all_stages:
        for run in stage.values("RUN"):
            for pip in _pip_commands(run):
                locks = re.findall(r"(?:-c|--constraint)\s+(\S+)", pip)
                if not any(LOCK.search(lock) for lock in locks):
                    bad.append(f"pip: `{pip.strip()[:60]}` is not constrained by a lock file (-c)")
        for add in stage.values("ADD"):
            if re.search(r"https?://", add):
                bad.append(f"no-remote-add: ADD {add} (download in a RUN, or COPY)")

    copies = " ".join(v for s in all_stages for v in s.values("COPY"))
    runs = " ".join(v for s in all_stages for v in s.values("RUN"))
    if (
        "constraints.txt" not in copies
        or "constraints.txt" not in runs
        or not re.search(r"-c\s+constraints(-[a-z0-9]+)?\.txt", runs)
    ):
        bad.append("pip: constraints.txt is not copied in and used with -c")
    if not final.values("HEALTHCHECK"):
        bad.append("healthcheck: the final stage states no HEALTHCHECK (use NONE with the reason)")
    return bad


def copied_sources(text: str) -> list[str]:
    """Build-context paths the Dockerfile COPYs (not --from a stage)."""
    out = []
    for stage in stages(text):
        for copy in stage.values("COPY"):
            if copy.startswith("["):
                continue
            parts = [p for p in copy.split() if not p.startswith("--chown") and not p.startswith("--chmod")]
            if parts and not parts[0].startswith("--from"):
                out += parts[:-1]
    return out
