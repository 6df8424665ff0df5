"""The scenario's namespaces on a real cluster: as they are on a cluster meshproof created, renamed on one it
borrows.

Suites speak of `default` and `monitoring`. On a kind cluster of meshproof's own those are the
namespaces used. On an existing cluster meshproof may only touch namespaces it creates, and `default`
is never one of them, so every scenario namespace `N` becomes `<prefix>N` there (the prefix is
`mp-<6 hex>-`, one per run), and so does everything that names a namespace: workloads, intents
(an authorization rule's principals included), requests, and back again the identities the servers
report. A mesh-wide mTLS policy would reach other people's workloads on a shared cluster, so there it
becomes one namespace-wide policy per meshproof namespace that has none of its own, which is what the
mesh-wide policy meant for meshproof's workloads (the more specific policy wins either way).

Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from meshproof.backend import Request
from meshproof.intent import AuthzPolicy, Identity, Intent, MtlsPolicy, Rule, Workload

#: The unmeshed namespace outside callers (the mTLS checks' plaintext and foreign clients) run in.
OUTSIDE = "meshproof-outside"
T = TypeVar("T", Workload, Request)


@dataclass(frozen=True)
class NamespaceMap:
    """Scenario namespace <-> cluster namespace: `prefix + name` (an empty prefix keeps the names)."""

    prefix: str = ""

    @classmethod
    def borrowed(cls) -> NamespaceMap:
        """The map of a run on a cluster meshproof did not create."""
        return cls(f"mp-{secrets.token_hex(3)}-")

    def cluster(self, namespace: str) -> str:
        return self.prefix + namespace

    def scenario(self, namespace: str) -> str:
        """The scenario's name of a cluster namespace (unchanged if it is not one of meshproof's)."""
        return namespace.removeprefix(self.prefix) if self.prefix else namespace

    def identity(self, identity: Identity) -> Identity:
        """A cluster identity (as a server reports it) in the scenario's terms."""
        return Identity(self.scenario(identity.namespace), identity.service_account)

    def moved(self, item: T) -> T:
        """A workload or request in the cluster's namespaces."""
        return dataclasses.replace(item, namespace=self.cluster(item.namespace))

    def intents(self, intents: Iterable[Intent], namespaces: Sequence[str]) -> list[Intent]:
        """`intents` in the cluster's namespaces; `namespaces` are the scenario's, for mesh-wide policies."""
        given = list(intents)
        if not self.prefix:
            return given
        covered = {i.namespace for i in given if isinstance(i, MtlsPolicy) and i.service is None and i.namespace}
        moved: list[Intent] = []
        for intent in given:
            if isinstance(intent, MtlsPolicy) and intent.namespace is None:
                moved += [MtlsPolicy(intent.mode, namespace=self.cluster(namespace))
                          for namespace in namespaces if namespace not in covered]
            elif isinstance(intent, AuthzPolicy):
                rules = tuple(Rule(tuple(self._principal(p) for p in rule.principals), rule.methods, rule.paths)
                              for rule in intent.rules)
                moved.append(dataclasses.replace(intent, namespace=self.cluster(intent.namespace), rules=rules))
            else:
                assert intent.namespace is not None
                moved.append(dataclasses.replace(intent, namespace=self.cluster(intent.namespace)))
        return moved

    def _principal(self, principal: str) -> str:
        identity = Identity.parse(principal)
        return Identity(self.cluster(identity.namespace), identity.service_account).principal
