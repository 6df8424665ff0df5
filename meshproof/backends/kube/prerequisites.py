"""The tools the Kubernetes meshes need, whether they are here, and how to get those that are not.

On a kind cluster: a Docker engine that answers, kind, and the mesh's CLI (istioctl, linkerd); on an
existing cluster only the mesh's CLI. kubectl is not needed: meshproof talks to the API server through
the kubernetes client, and applies what `linkerd install` prints itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

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
    "kind": Tool("kind", ("kind", "version"), "go install sigs.k8s.io/kind@v0.33.0 (or https://kind.sigs.k8s.io)"),
    "istioctl": Tool("istioctl", ("istioctl", "version", "--remote=false"),
                     "curl -sL https://istio.io/downloadIstio | ISTIO_VERSION=1.30.3 sh -, then put "
                     "istio-1.30.3/bin on PATH"),
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
    if done.returncode != 0:
        said = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        return False, f"`{' '.join(tool.version_argv)}` failed: {said[-1] if said else f'exit {done.returncode}'}"
    output = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return True, output[0] if output else "present"


def missing_tools(names: list[str]) -> str:
    """'' when every tool is here; else each missing one with what is wrong and how to get it, on one line."""
    missing = [(name, detail) for name in names for present, detail in [tool_status(name)] if not present]
    return ", ".join(f"{name} ({detail}; get it: {TOOLS[name].how_to_get})" for name, detail in missing)


def cluster_tools(mesh_tools: tuple[str, ...]) -> list[Prerequisite]:
    """The status of each tool a cluster mesh needs, for its descriptor."""
    statuses = []
    for name in mesh_tools:
        present, detail = tool_status(name)
        statuses.append(Prerequisite(name, present, detail, TOOLS[name].how_to_get))
    return statuses


def user_kubeconfig() -> Path:
    """The kubeconfig kubectl would read: the first file of $KUBECONFIG, else ~/.kube/config."""
    listed = os.environ.get("KUBECONFIG", "")
    return Path(listed.split(os.pathsep)[0]) if listed else Path.home() / ".kube" / "config"


def contexts(kubeconfig: Path) -> list[str]:
    """The context names of a kubeconfig file ([] when it is missing or unreadable)."""
    try:
        config = yaml.safe_load(kubeconfig.read_text())
    except (OSError, yaml.YAMLError):
        return []
    items = config.get("contexts") if isinstance(config, dict) else None
    return [str(item["name"]) for item in items or () if isinstance(item, dict) and "name" in item]


def kube_contexts() -> Prerequisite:
    """Whether the user's kubeconfig names a cluster for --cluster existing --kube-context NAME."""
    path = user_kubeconfig()
    names = contexts(path)
    detail = f"{path}: {', '.join(names)}" if names else f"no context in {path}"
    return Prerequisite("kube context", bool(names), detail,
                        "point KUBECONFIG at the cluster's kubeconfig, then --kube-context NAME",
                        clusters=("existing",))
