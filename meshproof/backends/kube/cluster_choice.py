"""Which cluster a cluster mesh runs on (`--cluster`): `local` (etcd + kube-apiserver built here, no
Docker), `kind` (a kind cluster of meshproof's own), or `existing` (the current kube context).

Without `--cluster`, the machine decides: the current kube context when there is one (the user
pointed kubectl somewhere), else kind when a Docker engine answers, else the local control plane,
which needs neither.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from meshproof.backends.kube.prerequisites import tool_status
from meshproof.errors import UserError

CLUSTERS = ("local", "kind", "existing")


def kube_context() -> str | None:
    """The current context of the user's kubeconfig ($KUBECONFIG's first file, else ~/.kube/config)."""
    listed = os.environ.get("KUBECONFIG", "")
    path = Path(listed.split(os.pathsep)[0]) if listed else Path.home() / ".kube" / "config"
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    context = config.get("current-context") if isinstance(config, dict) else None
    return str(context) if context else None


def choose_cluster(option: str | None) -> str:
    if option is not None:
        if option not in CLUSTERS:
            raise UserError(f"--cluster {option!r}: choose one of {', '.join(CLUSTERS)}")
        return option
    if kube_context() is not None:
        return "existing"
    return "kind" if tool_status("docker")[0] else "local"
