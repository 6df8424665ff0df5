"""A mesh on a real Kubernetes cluster, everything meshes have in common; each mesh subclasses it with its hooks.

`up()`: the mesh's CLI is checked against `--mesh-version`, the cluster is leased (a kind cluster of
meshproof's own, or an existing one: clusters.py), the mesh is installed with its CLI where meshproof
owns the cluster (found, and its version checked, where it does not), its control plane and injector
webhook are waited for, the echo image is built and loaded (or `--echo-image` is used), the scenario's
namespaces are created (meshed, with the mesh's injection labels; one unmeshed for outside callers),
the workloads are deployed (deploy.py) and rolled out with a proxy in every meshed pod, and the
baseline is applied.

`apply()`: the intents, moved into the cluster's namespaces, are rendered by the mesh's renderer (the
manifests `meshproof render` prints, then edited by `--manifest-hook` if one is given), server-side
applied in the renderer's order, and what the intents no longer name is deleted. It returns only when
(1) the mesh's own signal says every proxy has the change (istiod's store and proxy status, Linkerd's
route status) and then (2) what the intents make observable holds for `cluster.consecutive_successes`
probe rounds in a row (consistency.py), both within `cluster.propagation`.

`down()`: faults undone, the cluster given back (kind: deleted unless --keep-cluster; existing:
meshproof's namespaces deleted), every tool process stopped, the run directory (kubeconfig, keys)
removed, logs kept under --out. Also after a failed `up()`, and safe to call twice.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any

from meshproof.backend import (
    Backend,
    FaultInjection,
    Injected,
    ObservedIdentity,
    RequestCounts,
    Response,
    Telemetry,
)
from meshproof.backends.host.ca import LocalCA
from meshproof.backends.kube import consistency, deploy, objects, readiness, scaling
from meshproof.backends.kube.api import Json
from meshproof.backends.kube.calls import ClientCertificate, PodCalls, PodInstance
from meshproof.backends.kube.cluster import Cluster
from meshproof.backends.kube.clusters import ClusterLease, ExistingLease, KindLease
from meshproof.backends.kube.commands import Runner
from meshproof.backends.kube.deploy import CONTROL_PORT
from meshproof.backends.kube.image import build_context, tag
from meshproof.backends.kube.integration import MeshIntegration, ObjectKey, check_version, object_key
from meshproof.backends.kube.kind import docker_build
from meshproof.backends.kube.manifest_hook import load_manifest_hook, run_manifest_hook
from meshproof.backends.kube.metrics import Sample, parse
from meshproof.backends.kube.namespaces import OUTSIDE
from meshproof.backends.kube.pods import PodProxy, PodRef
from meshproof.backends.kube.prerequisites import TOOLS, missing_tools
from meshproof.descriptor import Options
from meshproof.errors import PrerequisiteError, UserError
from meshproof.faults import AppDelay, AppError, ControlPlaneDown, Fault
from meshproof.features import UnsupportedFeature
from meshproof.intent import Identity, Intent, Workload, as_json
from meshproof.processes import Supervisor
from meshproof.profile import Profile
from meshproof.runs import RunDir


class ClusterMesh(PodCalls, MeshIntegration, Backend, FaultInjection, Telemetry):
    fault_types = frozenset({AppError, AppDelay, ControlPlaneDown})

    def __init__(self, profile: Profile, options: Options, *, cluster: str) -> None:
        self.profile = profile
        self.options = options
        self.lease: ClusterLease = (KindLease(k8s_version=options.k8s_version, keep=options.keep_cluster)
                                    if cluster == "kind" else ExistingLease(context=options.kube_context))
        self.names = self.lease.names
        self.manifest_hook = load_manifest_hook(options.manifest_hook) if options.manifest_hook else None
        missing = missing_tools(self.needed_tools())
        if missing:
            raise PrerequisiteError(f"--mesh {self.name} --cluster {cluster} needs {missing} "
                                    "(meshproof doctor lists every prerequisite)")
        self.run: RunDir | None = None
        self.supervisor: Supervisor | None = None
        self.tools: Runner | None = None
        self.cluster: Cluster | None = None
        self.opened = False
        self.pod_proxy: PodProxy | None = None
        self.pods: dict[str, PodInstance] = {}
        self.outside: PodInstance | None = None
        self.foreign_client: ClientCertificate | None = None
        self.mesh_client: ClientCertificate | None = None
        self.workloads: tuple[Workload, ...] = ()
        self.baseline: tuple[Intent, ...] = ()
        self.intents: tuple[Intent, ...] = ()
        self.applied: dict[ObjectKey, Json] = {}
        self.injected: list[Injected] = []
        self.control_plane_down = False
        self.facts: dict[str, Any] = {"backend": f"{self.name}-{cluster}", **self.lease.facts}
        self.propagation: list[dict[str, Any]] = []

    def needed_tools(self) -> list[str]:
        """The mesh's CLI, plus docker and kind for a kind cluster."""
        return (["docker", "kind"] if isinstance(self.lease, KindLease) else []) + [self.cli]

    # --- lifecycle ------------------------------------------------------------------------------------
    def up(self, workloads: Sequence[Workload], baseline: Sequence[Intent]) -> None:
        try:
            self._up(tuple(workloads), tuple(baseline))
        except BaseException:
            self.down()
            raise

    def _up(self, workloads: tuple[Workload, ...], baseline: tuple[Intent, ...]) -> None:
        settings = self.profile.cluster
        started = time.monotonic()
        self.run = RunDir.create(f"{self.name}-{self.lease.kind}")
        self.supervisor = Supervisor(self.run)
        self.tools = tools = Runner(self.supervisor, self.run.path / "logs")
        wanted = self.options.mesh_version
        self.facts["cli"] = check_version(self.cli, wanted, self.cli_version(tools), TOOLS[self.cli].how_to_get)
        self.opened = True
        self.cluster = cluster = self.lease.open(self.run, tools, timeout=settings.create)
        self.facts["cluster_ready_s"] = round(time.monotonic() - started, 1)
        if self.lease.owns_mesh:
            self.install(cluster, tools, settings)
        self.wait_ready(cluster, tools, settings)
        found = check_version(f"{self.name} control plane", wanted, self.installed_version(cluster),
                              "meshproof found it on the cluster")
        self.facts["mesh_version"] = f"{self.name} {found}"
        self.facts["mesh_ready_s"] = round(time.monotonic() - started, 1)
        image = self._echo_image(tools)
        self.workloads = workloads
        self._create_namespaces()
        manifests = deploy.manifests(workloads, self.names, self.flavour, image) + self.support_manifests(self.names)
        for manifest in manifests:
            cluster.apply(manifest)
        deployments = [m for m in manifests if m["kind"] == "Deployment"]
        readiness.wait_rolled_out(cluster.api, deployments, timeout=settings.rollout, what="the workloads")
        self._index_pods(cluster, [*workloads, deploy.OUTSIDE_WORKLOAD])
        self.facts["workloads_ready_s"] = round(time.monotonic() - started, 1)
        assert self.run is not None
        foreign = LocalCA(self.run.path / "pki").foreign().issue(Identity("default", "foreign-client"),
                                                                 file_stem="foreign-client")
        self.foreign_client = ClientCertificate(foreign.cert.read_text(), foreign.key.read_text())
        self.mesh_client = self._mesh_client(cluster)
        self.pod_proxy = PodProxy(cluster.api, timeout=settings.request)
        self.baseline = baseline
        self.apply(baseline)
        self.facts["mesh_up_s"] = round(time.monotonic() - started, 1)

    def _mesh_client(self, cluster: Cluster) -> ClientCertificate | None:
        """A certificate of the mesh's own CA for the outside client, with the outside workload's identity,
        where the mesh lets meshproof read its CA."""
        ca = self.mesh_ca(cluster)
        if ca is None:
            return None
        assert self.run is not None
        signer = LocalCA(self.run.path / "pki" / "mesh", signer=(ca[0], ca[1]), chain=ca[2])
        outside = deploy.OUTSIDE_WORKLOAD
        identity = Identity(self.names.cluster(outside.namespace), outside.service_account)
        svid = signer.issue(identity, file_stem="outside-client")
        return ClientCertificate(svid.cert.read_text(), svid.key.read_text())

    def _echo_image(self, tools: Runner) -> str:
        if self.options.echo_image:
            return self.options.echo_image
        if not isinstance(self.lease, KindLease):
            raise UserError("--cluster existing needs --echo-image REF, an image of the echo app the cluster can pull "
                            "(build it: docker build -f meshproof/workloads/Dockerfile -t REF . and push it)")
        assert self.run is not None
        image = tag()
        tools(docker_build(image, build_context(self.run.path / "echo-image")))
        self.lease.load_image(image, tools)
        self.facts["echo_image"] = image
        return image

    def _create_namespaces(self) -> None:
        for name in deploy.namespaces(self.workloads):
            self.lease.create_namespace(name, dict(self.flavour.meshed_namespace_labels))
        self.lease.create_namespace(OUTSIDE, dict(self.flavour.unmeshed_namespace_labels))

    def _index_pods(self, cluster: Cluster, workloads: Sequence[Workload]) -> None:
        timeout = self.profile.cluster.rollout
        for workload in workloads:
            meshed = workload is not deploy.OUTSIDE_WORKLOAD
            for pod in readiness.ready_pods(cluster.api, self.names.cluster(workload.namespace),
                                            deploy.pod_selector(workload), expected=workload.replicas,
                                            proxy_container=self.flavour.proxy_container if meshed else None,
                                            timeout=timeout):
                instance = PodInstance(PodRef(pod["metadata"]["namespace"], pod["metadata"]["name"]), workload,
                                       str(pod["status"].get("podIP", "")))
                if meshed:
                    self.pods[instance.ref.name] = instance
                else:
                    self.outside = instance

    def down(self) -> None:
        """Give everything back, in reverse; safe after a failed `up()` and twice."""
        while self.injected:
            try:
                self.injected.pop().undo()
            except UserError:
                break  # the cluster is going away anyway
        note = None
        try:
            if self.opened and self.tools is not None:
                self.opened = False
                note = self.lease.close(self.tools)
        finally:
            if self.supervisor is not None:
                self.supervisor.stop_all(grace=self.profile.timeouts.shutdown_grace)
            if self.run is not None:
                artifacts = self.options.artifacts_dir
                if artifacts is not None and (self.run.path / "logs").is_dir():  # never the kubeconfig or keys
                    shutil.copytree(self.run.path / "logs", artifacts / "logs", dirs_exist_ok=True)
                self.run.remove()
            self.run = self.supervisor = self.tools = self.cluster = self.pod_proxy = None
            self.pods.clear()
            self.outside = None
        if note is not None and isinstance(self.lease, KindLease) and self.lease.keep:
            print(f"meshproof: {note}", file=sys.stderr)

    # --- configuration --------------------------------------------------------------------------------
    def apply(self, intents: Sequence[Intent]) -> None:
        cluster, proxy = self._connected()
        if self.control_plane_down:
            raise UserError(f"the {self.name} control plane is scaled to zero (a ControlPlaneDown fault is in force): "
                            "no change can reach the proxies until it is undone")
        scenario_namespaces = deploy.namespaces(self.workloads)
        moved = self.names.intents(intents, scenario_namespaces)
        try:
            manifests = self.render(moved, [self.names.moved(w) for w in self.workloads])
        except UnsupportedFeature:
            raise
        except ValueError as exc:
            raise UserError(f"cannot render the intents for {self.name}: {exc}") from None
        if self.manifest_hook is not None:  # --manifest-hook: break the mesh on purpose, or try a change
            manifests = run_manifest_hook(self.manifest_hook, manifests)
        started = time.monotonic()
        wanted = {object_key(manifest): manifest for manifest in manifests}
        order = {kind: index for index, kind in enumerate(self.kind_order)}
        changed = sorted((m for key, m in wanted.items() if self.applied.get(key) != m),
                         key=lambda m: order.get(m["kind"], len(order)))
        removed = sorted((key for key in self.applied if key not in wanted), key=lambda k: -order.get(k[1], len(order)))
        if not changed and not removed:
            self.intents = tuple(intents)
            return
        stored: dict[ObjectKey, Json | None] = {}
        for manifest in changed:
            stored[object_key(manifest)] = cluster.apply(manifest)
            self.applied[object_key(manifest)] = manifest
        for key in removed:
            objects.delete(cluster.api, self.applied.pop(key))
            stored[key] = None
        timeout = self.profile.cluster.propagation
        signal = self.wait_served(cluster, proxy, stored, list(self.pods.values()), self.names, timeout)
        convergence = self._until_consistent(intents, timeout - (time.monotonic() - started))
        self.propagation.append({"seconds": round(time.monotonic() - started, 3), "signal": signal,
                                 "probe_rounds": convergence.rounds})
        self.intents = tuple(intents)

    def _connected(self) -> tuple[Cluster, PodProxy]:
        if self.cluster is None or self.pod_proxy is None:
            raise UserError(f"the {self.name} mesh is not up")
        return self.cluster, self.pod_proxy

    def _until_consistent(self, intents: Sequence[Intent], timeout: float) -> consistency.Convergence:
        named = {p for i in (*intents, *self.intents) for rule in getattr(i, "rules", ())
                 for p in getattr(rule, "principals", ())}
        unprivileged = [w for w in self.workloads if w.identity.principal not in named]
        if not unprivileged:  # every identity is named somewhere: no caller whose verdict is certain
            return consistency.Convergence(0, 0.0)
        caller = unprivileged[0]
        found = consistency.expectations(intents, self.intents, source=caller.name, identity=caller.identity)

        def round_problems() -> list[str]:
            problems = []
            for expectation in found:
                seen = expectation.judge(self.call(expectation.source, expectation.request))
                if seen is not None:
                    problems.append(f"{expectation.description}: got {seen}")
            return problems

        settings = self.profile.cluster
        return consistency.until_consistent(round_problems, consecutive=settings.consecutive_successes,
                                            timeout=max(timeout, settings.probe_interval),
                                            interval=settings.probe_interval, what=f"the {self.name} mesh")

    def reset(self) -> None:
        self.undo_all()
        self.apply(self.baseline)
        self.reset_apps()

    # --- faults ---------------------------------------------------------------------------------------
    def inject(self, fault: Fault, instance: str) -> Injected:
        if isinstance(fault, ControlPlaneDown):
            injected = self._stop_control_plane(fault, instance)
        elif isinstance(fault, AppError | AppDelay):
            injected = self.app_fault(fault, instance)
        else:
            raise UnsupportedFeature(self.name, fault.feature.name, self.unsupported[fault.feature.name])
        self.injected.append(injected)
        return injected

    def _stop_control_plane(self, fault: ControlPlaneDown, instance: str) -> Injected:
        """Scale the control plane's Deployments to zero; undo restores their replicas, waits for the rollout
        and for every proxy to be served again (the mesh's own signal, through a fresh change)."""
        cluster, proxy = self._connected()
        if not self.lease.owns_mesh:
            raise UnsupportedFeature(self.name, fault.feature.name, "meshproof scales no control plane it did not "
                                     "install: on an existing cluster it changes only its own namespaces")
        settings = self.profile.cluster
        deployments = self.control_plane()
        replicas = scaling.scale_to_zero(cluster.api, deployments, timeout=settings.rollout,
                                         what=f"the {self.name} control plane")
        self.control_plane_down = True

        def undo() -> None:
            scaling.restore(cluster.api, deployments, replicas, timeout=settings.rollout,
                            what=f"the {self.name} control plane")
            self.control_plane_down = False
            self.wait_served(cluster, proxy, {}, list(self.pods.values()), self.names, settings.propagation)

        return Injected(fault, instance, undo)

    # --- observations ---------------------------------------------------------------------------------
    def observed_identity(self, response: Response) -> ObservedIdentity:
        echo = response.echo
        seen = self.peer_identity(echo["headers"] if echo else {})
        identity = None if seen.identity is None else self.names.identity(seen.identity)
        return ObservedIdentity(identity, seen.source, seen.raw)

    def _metrics(self, pod: PodInstance) -> list[Sample]:
        _, proxy = self._connected()
        return parse(proxy.text(pod.ref, self.flavour.metrics_port, self.flavour.metrics_path))

    def request_counts(self, service: str, version: str, namespace: str = "default") -> RequestCounts:
        total = RequestCounts(0, 0)
        for name in self.instances(service, namespace, version):
            counts = self.proxy_request_counts(self._metrics(self.pods[name]))
            total = RequestCounts(total.total + counts.total, total.server_errors + counts.server_errors)
        return total

    def outlier_stats(self, source: str, service: str, namespace: str = "default") -> dict[str, int]:
        return self.proxy_outlier_stats(self._metrics(self._caller(source)), service, self.names.cluster(namespace))

    def describe(self) -> dict[str, Any]:
        seconds = sorted(item["seconds"] for item in self.propagation)
        return {**self.facts, "namespaces": {ns: self.names.cluster(ns) for ns in
                                             [*deploy.namespaces(self.workloads), OUTSIDE]},
                "pods": len(self.pods),
                "propagation_s": {"applies": len(seconds), "median": seconds[len(seconds) // 2] if seconds else None,
                                  "max": seconds[-1] if seconds else None}}

    def addresses(self) -> dict[str, dict[str, str]]:
        kubeconfig = self.cluster.kubeconfig if self.cluster is not None else "KUBECONFIG"
        return {name: {"pod": str(pod.ref), "ip": pod.ip, "control": f"kubectl --kubeconfig {kubeconfig} -n "
                       f"{pod.ref.namespace} port-forward pod/{pod.ref.name} {CONTROL_PORT}"}
                for name, pod in sorted(self.pods.items())}

    def diagnostics(self) -> dict[str, Any]:
        found: dict[str, Any] = {"intents": [as_json(intent) for intent in self.intents],
                                 "manifests": list(self.applied.values()),
                                 "last_propagation": self.propagation[-1] if self.propagation else None}
        if self.cluster is not None and self.pod_proxy is not None:
            try:
                found["control_plane"] = self.control_plane_diagnostics(self.cluster, self.pod_proxy)
            except UserError as exc:
                found["control_plane"] = f"not readable: {exc}"
        return found


def _namespace(name: str) -> Json:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
