"""What a mesh would be given for a set of intents, for `meshproof render` (no I/O, no cluster).

For Istio and Linkerd: the Kubernetes resources, each validated against the mesh's published CRD
schema before it is shown; intents the mesh cannot express are listed with the reason instead. For the
local mesh: each sidecar's Envoy configuration as one static bootstrap, with illustrative ports and
paths (a real run allocates its own), which is what an --envoy-config-hook author starts from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshproof.backends.kube.schema import check
from meshproof.features import UnsupportedFeature
from meshproof.intent import Intent, Workload

Manifest = dict[str, Any]


def cluster_manifests(mesh: str, intents: Sequence[Intent], workloads: Sequence[Workload]
                      ) -> tuple[list[Manifest], list[str]]:
    """(validated manifests, "intent: why the mesh cannot express it" for each intent left out)."""
    if mesh == "istio":
        from meshproof.backends.istio import render
    else:
        from meshproof.backends.linkerd import render
    expressible, left_out = [], []
    for intent in intents:
        try:
            render([intent], workloads)
            expressible.append(intent)
        except UnsupportedFeature as gap:
            left_out.append(f"{type(intent).__name__} ({gap.feature}): {gap.reason}")
    manifests = render(expressible, workloads)
    check(manifests)
    return manifests, left_out


def local_sidecars(intents: Sequence[Intent], workloads: Sequence[Workload]) -> dict[str, Manifest]:
    from meshproof.backends.local import render
    from meshproof.backends.local.topology import Instance, SidecarFiles, Topology

    instances, port = [], 20000
    for workload in workloads:
        for name in workload.instance_names():
            instances.append(Instance(name, workload, *range(port, port + 5)))
            port += 5
    topology = Topology(tuple(instances))
    configs = {}
    for instance in instances:
        base = Path("/run/meshproof") / instance.name
        files = SidecarFiles(base / "svid.crt", base / "svid.key", Path("/run/meshproof/root-cert.pem"), base / "xds")
        config = render.render(instance, topology, intents, files)
        configs[instance.name] = render.static_bootstrap(instance, files, config)
    return configs
