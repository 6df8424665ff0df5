"""The tools the Kubernetes meshes need, whether they are here, and how to get those that are not."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from meshproof.descriptor import Prerequisite


@dataclass(frozen=True)
class Tool:
    name: str
    version_argv: tuple[str, ...]
    how_to_get: str


TOOLS = {
    "docker": Tool("docker", ("docker", "info", "--format", "{{.ServerVersion}}"),
                   "install Docker Engine and start it (https://docs.docker.com/engine/install/); "
                   "`docker info` must reach the engine, the client alone is not enough"),
    "kind": Tool("kind", ("kind", "version"), "go install sigs.k8s.io/kind@v0.30.0 (or https://kind.sigs.k8s.io)"),
    "kubectl": Tool("kubectl", ("kubectl", "version", "--client"),
                    "https://kubernetes.io/docs/tasks/tools/ (or apt install kubectl)"),
    "istioctl": Tool("istioctl", ("istioctl", "version", "--remote=false"),
                     "download istioctl 1.30.x from https://github.com/istio/istio/releases and put it on PATH"),
    "linkerd": Tool("linkerd", ("linkerd", "version", "--client", "--short"),
                    "curl -sL https://run.linkerd.io/install-edge | sh, then add ~/.linkerd2/bin to PATH"),
}


def tool_status(name: str) -> tuple[bool, str]:
    """(present, version or what is wrong)."""
    tool = TOOLS[name]
    if shutil.which(tool.version_argv[0]) is None:
        return False, "not found on PATH"
    try:
        done = subprocess.run(list(tool.version_argv), capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`{' '.join(tool.version_argv)}` failed: {exc}"
    output = (done.stdout or done.stderr).strip().splitlines()
    if done.returncode != 0:
        return False, f"`{' '.join(tool.version_argv)}` failed: {output[-1] if output else done.returncode}"
    return True, output[0] if output else "present"


def cluster_tools(mesh_tools: tuple[str, ...]) -> list[Prerequisite]:
    """The status of each tool a cluster mesh needs, for its descriptor."""
    statuses = []
    for name in mesh_tools:
        present, detail = tool_status(name)
        statuses.append(Prerequisite(name, present, detail, TOOLS[name].how_to_get))
    return statuses
