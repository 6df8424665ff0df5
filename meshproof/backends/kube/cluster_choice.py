"""Which cluster a cluster mesh runs on (`--cluster`): `kind` (a kind cluster of meshproof's own) or
`existing` (a context of the user's kubeconfig, `--kube-context`); `local` (etcd + kube-apiserver built
here, no Docker) for a mesh that can run on it.

Without `--cluster`, kind when a Docker engine answers; on a machine without one, the local control
plane if the mesh runs there, else kind still (whose prerequisites then say what is missing). An
existing cluster is never chosen by default: meshproof changes a cluster the user did not name.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshproof.backends.kube.prerequisites import tool_status
from meshproof.errors import UserError

CLUSTERS = ("local", "kind", "existing")


def choose_cluster(option: str | None, *, mesh: str, supported: Sequence[str]) -> str:
    if option is not None:
        if option not in CLUSTERS:
            raise UserError(f"--cluster {option!r}: choose one of {', '.join(CLUSTERS)}")
        if option not in supported:
            raise UserError(f"--cluster {option}: --mesh {mesh} runs on {' or '.join(supported)}")
        return option
    if "local" in supported and not tool_status("docker")[0]:
        return "local"
    return "kind"
