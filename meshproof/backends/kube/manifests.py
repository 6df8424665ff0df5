"""What a cluster mesh would be given for a set of intents (no I/O, no cluster): the Kubernetes resources,
each validated against the mesh's published CRD schema; intents the mesh cannot express are listed with
the reason instead. `meshproof render` shows it, and the cluster backends apply exactly this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from meshproof.backends.kube.conventions import NOT_EXPRESSED
from meshproof.backends.kube.schema import check
from meshproof.descriptor import Rendered
from meshproof.features import UnsupportedFeature
from meshproof.intent import Intent, Workload

Manifest = dict[str, Any]


Renderer = Callable[[Sequence[Intent], Sequence[Workload]], list[Manifest]]


def cluster_manifests(render: Renderer, intents: Sequence[Intent], workloads: Sequence[Workload]
                      ) -> tuple[list[Manifest], list[str]]:
    """(validated manifests, "intent: why the mesh cannot express it" for each intent left out, and for each
    part of an intent an object says it left out)."""
    expressible, left_out = [], []
    for intent in intents:
        try:
            render([intent], workloads)
            expressible.append(intent)
        except UnsupportedFeature as gap:
            left_out.append(f"{type(intent).__name__} ({gap.feature}): {gap.reason}")
    manifests = render(expressible, workloads)
    check(manifests)
    for manifest in manifests:
        note = manifest["metadata"].get("annotations", {}).get(NOT_EXPRESSED)
        if note:
            left_out.append(f"{manifest['kind']} {manifest['metadata']['name']} (in part): {note}")
    return manifests, left_out


def rendered(render: Renderer, intents: Sequence[Intent], workloads: Sequence[Workload]) -> Rendered:
    """`cluster_manifests` as `meshproof render` shows it."""
    manifests, left_out = cluster_manifests(render, intents, workloads)
    return Rendered(manifests, f"{len(manifests)} resources, each valid against its published CRD schema", left_out)
