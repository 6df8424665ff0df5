"""Which intents apply where: the selection every renderer makes the same way, written once beside the
intents (no I/O, no mesh). A renderer that selected differently would give two meshes different
policies for the same intents.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from meshproof.intent import (
    AuthzPolicy,
    ConnectionPool,
    Intent,
    LoadBalancer,
    MtlsMode,
    MtlsPolicy,
    OutlierPolicy,
    RateLimit,
    Route,
    Workload,
)


def effective_mtls(intents: Iterable[Intent], workload: Workload) -> MtlsMode | None:
    """The mode of the most specific MtlsPolicy selecting `workload` (service > namespace > mesh, as in
    Istio's PeerAuthentication); None when none does. Two of one scope that disagree are an error."""
    best: tuple[int, MtlsMode | None] = (0, None)
    for intent in intents:
        if isinstance(intent, MtlsPolicy):
            rank = intent.applies_to(workload)
            if rank > best[0]:
                best = (rank, intent.mode)
            elif rank and rank == best[0] and intent.mode != best[1]:
                raise ValueError(f"two mTLS policies of the same scope disagree for {workload.name}")
    return best[1]


def services_of(workloads: Iterable[Workload]) -> list[tuple[str, str]]:
    """Every (namespace, service) the workloads make up, sorted."""
    return sorted({(w.namespace, w.service) for w in workloads})


def versions_of(workloads: Iterable[Workload], service_name: str, namespace: str) -> list[str]:
    return sorted({w.version for w in workloads if w.service == service_name and w.namespace == namespace})


def check_versions(route: Route, versions: Sequence[str]) -> None:
    """ValueError when `route` splits to a version none of `versions` (those the workloads run) is."""
    for version in sorted(route.versions()):
        if version not in versions:
            raise ValueError(f"route for {route.service}: no workload of version {version!r} "
                             f"(have {list(versions)})")


def target_of(intent: Intent) -> tuple[str, str] | None:
    """The (namespace, service) an intent is about; None for a mesh- or namespace-wide MtlsPolicy."""
    if isinstance(intent, MtlsPolicy):
        if intent.namespace is None or intent.service is None:
            return None
        return (intent.namespace, intent.service)
    if isinstance(intent, AuthzPolicy | RateLimit):
        return (intent.namespace, intent.target)
    return (intent.namespace, intent.service)


def check_targets(intents: Iterable[Intent], workloads: Iterable[Workload]) -> None:
    """ValueError for an intent about a service no workload provides: a typo would select nothing."""
    known = set(services_of(workloads))
    for intent in intents:
        key = target_of(intent)
        if key is not None and key not in known:
            raise ValueError(f"{type(intent).__name__} for {key[1]}.{key[0]}, which no workload provides")


PerService = TypeVar("PerService", Route, OutlierPolicy, ConnectionPool, LoadBalancer, RateLimit)


def one_per_service(intents: Iterable[Intent], kind: type[PerService]) -> dict[tuple[str, str], PerService]:
    """The intent of `kind` for each (namespace, service); two for one service is an error, as in the local
    mesh: which one should win is not for a renderer to guess."""
    found: dict[tuple[str, str], PerService] = {}
    for intent in intents:
        if isinstance(intent, kind):
            key = target_of(intent)
            assert key is not None  # these kinds always name a service
            if key in found:
                raise ValueError(f"more than one {kind.__name__} for {key[1]}.{key[0]}; merge them into one")
            found[key] = intent
    return found


AnyIntent = TypeVar("AnyIntent", MtlsPolicy, AuthzPolicy, Route, OutlierPolicy, ConnectionPool, LoadBalancer,
                    RateLimit)


def for_service(intents: Iterable[Intent], kind: type[AnyIntent], service: str, namespace: str) -> list[AnyIntent]:
    """Every intent of `kind` about `service` in `namespace`, in order."""
    return [intent for intent in intents if isinstance(intent, kind) and target_of(intent) == (namespace, service)]
