"""Rendered manifests judged by a real API server: accepted under strict validation, stored as sent.

Each manifest goes through server-side apply with `fieldValidation=Strict` (and the server's
admission chain), is read back, and must come back containing every field sent, unchanged (the
server may add defaults). Beside the server's verdict stands what meshproof's own schema validator
(schema.py) said of the same manifest, so any disagreement between the two shows; where they
disagree, the server is right.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meshproof import builds, registry, scenario
from meshproof.backends.kube import objects, schema
from meshproof.backends.kube.api import Json, describe
from meshproof.backends.kube.cluster import Cluster
from meshproof.backends.kube.controlplane import LocalControlPlane
from meshproof.builds import BuildProgress
from meshproof.errors import UserError
from meshproof.profile import load_profile


@dataclass(frozen=True)
class Verdict:
    manifest: Json
    refused: str | None  # the server's reason; None when it accepted the manifest
    differences: tuple[str, ...]  # where the stored object differs from what was sent
    validator: tuple[str, ...]  # what schema.validate said

    @property
    def accepted_as_sent(self) -> bool:
        return self.refused is None and not self.differences

    @property
    def validator_agrees(self) -> bool:
        return (self.refused is None) == (not self.validator)

    def line(self) -> str:
        what = describe(self.manifest)
        if self.refused is not None:
            verdict = f"REFUSED  {what}: {self.refused}"
        elif self.differences:
            verdict = f"CHANGED  {what}: {'; '.join(self.differences)}"
        else:
            verdict = f"ok       {what}"
        if not self.validator_agrees:
            said = f"refused it: {'; '.join(self.validator)}" if self.validator else "accepted it"
            verdict += f" (meshproof's validator {said})"
        return verdict


def judge(cluster: Cluster, items: Iterable[Json], *, dry_run: bool = False) -> list[Verdict]:
    """Apply each manifest, read it back (unless dry_run: then the server's answer is what it would store)."""
    verdicts = []
    for manifest in items:
        validator = tuple(schema.validate(manifest))
        try:
            answer = cluster.apply(manifest, dry_run=dry_run)
        except objects.Refused as refused:
            verdicts.append(Verdict(manifest, refused.message, (), validator))
            continue
        except UserError as refused:  # e.g. a kind or version the server does not serve
            verdicts.append(Verdict(manifest, str(refused), (), validator))
            continue
        stored = answer if dry_run else objects.get(cluster.api, manifest)
        found = ["not found when read back"] if stored is None else objects.differences(manifest, stored)
        verdicts.append(Verdict(manifest, None, tuple(found), validator))
    return verdicts


def rendered(mesh: str, profile_spec: str | None) -> list[Json]:
    """Every manifest `meshproof render --mesh MESH --profile PROFILE` prints."""
    intents = scenario.seed_intents(load_profile(profile_spec))
    return registry.descriptor(mesh).render(intents, scenario.WORKLOADS).documents


def namespaces_of(items: Sequence[Json]) -> list[str]:
    return sorted({item["metadata"]["namespace"] for item in items if item.get("metadata", {}).get("namespace")})


def check(meshes: Sequence[str], profile_spec: str | None, *, progress: BuildProgress | None = None) -> int:
    """`meshproof controlplane check`: each mesh's manifests judged by a local API server, one line each.
    0 when every manifest is accepted as sent, 1 otherwise."""
    plans = {mesh: rendered(mesh, profile_spec) for mesh in meshes}  # bad input fails before anything starts
    failed = 0
    with LocalControlPlane.start(progress=progress) as plane:
        cluster = plane.cluster()
        try:
            started = time.monotonic()
            crds = cluster.install_crds(schema.CRD_DIR / name for name in schema.VENDORED_FILES)
            print(f"meshproof: {len(crds)} CRDs installed in {time.monotonic() - started:.1f} s on {plane.server} "
                  f"(kube-apiserver {builds.component('kube-apiserver').version})")
            for mesh, items in plans.items():
                for namespace in namespaces_of(items):
                    cluster.create_namespace(namespace)
                verdicts = judge(cluster, items)
                for verdict in verdicts:
                    print(f"{mesh}: {verdict.line()}")
                failed += sum(not verdict.accepted_as_sent for verdict in verdicts)
                for item in reversed(items):  # the next mesh starts from an empty namespace
                    objects.delete(cluster.api, item)
        finally:
            cluster.api.close()
    total = sum(len(items) for items in plans.values())
    print(f"meshproof: {total - failed} of {total} manifests accepted and stored as sent")
    return 1 if failed else 0
