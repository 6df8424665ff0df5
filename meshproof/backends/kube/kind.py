"""kind clusters of meshproof's own: the pinned node images, and the kind and docker command lines.

kind v0.33.0 publishes one node image per Kubernetes minor, and supports exactly those digests (kind's
release notes: "use the digests", a tag alone may name a rebuilt image). `--k8s-version X.Y` (or
X.Y.Z of the same patch) picks one of them; anything else is refused with the list. The default,
1.35, is a minor inside the support windows the Istio 1.30/1.31 and Linkerd edge-26 release notes
give (not checked against a running cluster here: this machine has no Docker engine).

A cluster is named `meshproof-<6 hex>`, has one control-plane node, and writes its kubeconfig to the
run's directory (never to ~/.kube/config). The echo app's image is built with `docker build` from
the files the image needs (workloads/image.py) and copied onto the node with `kind load docker-image`,
so no registry is involved.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from meshproof.backends.kube.commands import Command
from meshproof.errors import UserError

KIND_VERSION = "v0.33.0"
#: Kubernetes minor -> the node image kind v0.33.0 was released with (its release notes list them).
NODE_IMAGES = {
    "1.37": "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
    "1.36": "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
    "1.35": "kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
    "1.34": "kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
}
DEFAULT_K8S_VERSION = "1.35"
RESOURCE_KIND = "kind-cluster"  # the RunDir resource `meshproof cleanup` deletes
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")


def node_image(k8s_version: str | None) -> str:
    """The pinned node image for `--k8s-version` (X.Y, or X.Y.Z naming that image's patch)."""
    wanted = k8s_version or DEFAULT_K8S_VERSION
    match = _VERSION.match(wanted)
    if match is not None:
        major, minor, patch = match.groups()
        image = NODE_IMAGES.get(f"{major}.{minor}")
        if image is not None and (patch is None or image_version(image) == f"v{major}.{minor}.{patch}"):
            return image
    offered = ", ".join(f"{minor} ({image_version(image)})" for minor, image in NODE_IMAGES.items())
    raise UserError(f"--k8s-version {wanted!r}: kind {KIND_VERSION} has node images for {offered}; "
                    "choose one of those")


def image_version(image: str) -> str:
    """`kindest/node:v1.35.8@sha256:...` -> `v1.35.8`."""
    return image.split(":", 1)[1].split("@", 1)[0]


def new_name() -> str:
    return f"meshproof-{secrets.token_hex(3)}"


def config() -> dict[str, Any]:
    """The cluster's kind configuration: one control-plane node, kind's default networking."""
    return {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": [{"role": "control-plane"}]}


def create(name: str, image: str, config_file: Path, kubeconfig: Path, *, timeout: float) -> Command:
    # --wait lets kind return only once the node is Ready; meshproof's own deadline bounds the whole command.
    return Command("kind-create", ("kind", "create", "cluster", "--name", name, "--image", image,
                                   "--config", str(config_file), "--kubeconfig", str(kubeconfig),
                                   "--wait", f"{int(timeout)}s"),
                   f"create the kind cluster {name} ({image_version(image)})", timeout + 60)


def delete(name: str, kubeconfig: Path | None, *, timeout: float = 180.0) -> Command:
    """`--kubeconfig` keeps kind from editing the user's own kubeconfig while it forgets the cluster."""
    argv = ("kind", "delete", "cluster", "--name", name) + (("--kubeconfig", str(kubeconfig)) if kubeconfig else ())
    return Command("kind-delete", argv, f"delete the kind cluster {name}", timeout)


def load_image(name: str, image: str, *, timeout: float = 300.0) -> Command:
    return Command("kind-load", ("kind", "load", "docker-image", image, "--name", name),
                   f"load the image {image} into the kind cluster {name}", timeout)


def docker_build(image: str, context: Path, *, timeout: float = 600.0) -> Command:
    return Command("docker-build", ("docker", "build", "--tag", image, "--file", str(context / "Dockerfile"),
                                    str(context)),
                   f"build the echo app's image {image}", timeout)


def delete_recorded(resource: dict[str, str]) -> str:
    """Delete a kind cluster a killed run recorded (`meshproof cleanup`); what was done, in a few words."""
    kubeconfig = Path(resource["kubeconfig"]) if resource.get("kubeconfig") else None
    command = delete(resource["name"], kubeconfig if kubeconfig is not None and kubeconfig.exists() else None)
    if shutil.which("kind") is None:
        return f"kind cluster {resource['name']} not deleted: kind is not on PATH (delete it with {command.line()})"
    done = subprocess.run(list(command.argv), capture_output=True, text=True, timeout=command.timeout)
    if done.returncode != 0:
        return f"kind cluster {resource['name']} not deleted: {(done.stderr or done.stdout).strip()[-200:]}"
    return f"kind cluster {resource['name']} deleted"
