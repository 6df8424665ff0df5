"""The embedded local mesh: echo apps behind real Envoy sidecars on 127.0.0.1, with a local SPIFFE CA.

Each workload instance is two processes: the echo app (app port + control port) and its Envoy (inbound
mTLS listener in front of the app, outbound listener for the app's own calls, admin). The test runner
calls an app's control port to make a request *as* that workload; the app sends it to its sidecar's
outbound listener, which routes it over mTLS to the serving instance's inbound listener. Nothing
listens beyond loopback. `down()` stops every process, releases the ports and deletes the run
directory with its private keys; the run directory's process registry lets `meshproof cleanup`
finish the job if the runner itself was killed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, assert_never

import psutil

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
from meshproof.backends.host.app_faults import AppFaults
from meshproof.backends.host.apps import EchoApp
from meshproof.backends.host.ca import LocalCA, Svid
from meshproof.backends.host.calls import EchoCalls
from meshproof.backends.host.disruption import Blackhole, connect_outcome
from meshproof.backends.host.envoy import envoy_version, find_envoy
from meshproof.backends.host.impostor import ImpostorServer, impostor_svid
from meshproof.backends.host.ports import PortBlock
from meshproof.backends.host.topology import Instance, Topology
from meshproof.backends.local import UNSUPPORTED, render
from meshproof.backends.local.hook import ConfigHook, run_hook
from meshproof.backends.local.render import SidecarFiles
from meshproof.backends.local.sidecar import Pending, Sidecar
from meshproof.errors import UserError
from meshproof.faults import (
    ALL,
    AppCrash,
    AppDelay,
    AppError,
    AppFreeze,
    ControlPlaneDown,
    Fault,
    HttpFault,
    Impostor,
    PortBlackholed,
    PortRefused,
    ProxyCrash,
)
from meshproof.intent import Identity, Intent, Workload, as_json
from meshproof.processes import Supervisor, wait_until
from meshproof.profile import Profile
from meshproof.runs import RunDir, state_root

XFCC = "x-forwarded-client-cert"


class LocalMesh(EchoCalls, Backend, FaultInjection, Telemetry, LoadTargets):
    name = "local"
    overflow_marker = ("x-envoy-overloaded", "true")
    fault_types = frozenset(ALL) - {ControlPlaneDown}  # its proxies read files: there is no control plane
    unsupported = UNSUPPORTED

    def __init__(self, profile: Profile, *, hook: ConfigHook | None = None,
                 artifacts_dir: Path | None = None) -> None:
        """`artifacts_dir`: where the logs (logs/) and rendered configs (config/) are kept after `down()`."""
        self.profile = profile
        self.hook = hook
        self.artifacts_dir = artifacts_dir
        self.run: RunDir | None = None
        self.ports: PortBlock | None = None
        self.supervisor: Supervisor | None = None
        self.topology = Topology(())
        self.sidecars: dict[str, Sidecar] = {}
        self.apps: dict[str, EchoApp] = {}
        self.baseline: tuple[Intent, ...] = ()
        self.intents: tuple[Intent, ...] = ()
        self.foreign_client: Svid | None = None
        self.mesh_client: Svid | None = None  # a valid mesh certificate for clients outside the mesh
        self.ca: LocalCA | None = None
        self.svids: dict[Identity, Svid] = {}
        self.startup: dict[str, Any] = {}
        self.crashed: set[str] = set()  # sidecars down (ProxyCrash)
        self.injected: list[Injected] = []
        # the other faults in force, by instance (see inject())
        self.app_faults: AppFaults | None = None
        self.http_faults: dict[str, list[HttpFault]] = {}
        self.inbound_closed: set[str] = set()
        self.blackholes: dict[str, Blackhole] = {}
        self._envoy_version = ""
        self._bootstraps: dict[str, dict[str, Any]] = {}

    # --- lifecycle ------------------------------------------------------------------------------------
    def up(self, workloads: Sequence[Workload], baseline: Sequence[Intent]) -> None:
        try:
            self._up(workloads, tuple(baseline))
        except BaseException:
            self.down()
            raise

    def _up(self, workloads: Sequence[Workload], baseline: tuple[Intent, ...]) -> None:
        envoy = find_envoy()
        self._envoy_version = envoy_version(envoy)
        self.run = run = RunDir.create("local")
        self.ports = ports = PortBlock.reserve(state_root() / "locks")
        self.supervisor = supervisor = Supervisor(run)
        self.app_faults = AppFaults(self.apps, supervisor, self._start_app,
                                    startup_timeout=self.profile.timeouts.startup)
        self.ca = ca = LocalCA(run.path / "pki")
        self.foreign_client = ca.foreign().issue(Identity("default", "foreign-client"), file_stem="foreign-client")
        self.mesh_client = ca.issue(Identity("default", "outside-client"), file_stem="outside-client")
        self.svids = svids = {}
        instances = []
        for workload in workloads:
            if workload.identity not in svids:
                svids[workload.identity] = ca.issue(
                    workload.identity, file_stem=f"{workload.namespace}.{workload.service_account}")
            for name in workload.instance_names():
                instances.append(Instance(name, workload, *(ports.take() for _ in range(5))))
        self.topology = Topology(tuple(instances))
        self.baseline = baseline
        started = time.monotonic()
        logs = run.path / "logs"
        for instance in instances:
            self.apps[instance.name] = self._start_app(instance)
            svid = svids[instance.identity]
            files = SidecarFiles(svid.cert, svid.key, ca.root, run.path / "xds" / instance.name)
            self.sidecars[instance.name] = Sidecar(
                instance, files, envoy=envoy, concurrency=self.profile.local.sidecar_concurrency,
                drain_time_s=self.profile.local.drain_time, admin_timeout=self.profile.timeouts.admin,
            )
        configs = self._render(baseline)
        sidecar_started = {}
        for name, sidecar in self.sidecars.items():
            for kind in render.XDS_KINDS:
                sidecar.write(kind, configs[name][kind])
            self._bootstraps[name] = run_hook(self.hook, sidecar.instance.workload.name,
                                              render.bootstrap(sidecar.instance, sidecar.files), "bootstrap")
            sidecar.start(supervisor, self._bootstraps[name], logs / f"envoy-{name}.log")
            sidecar_started[name] = time.monotonic()
        ready_at: dict[str, float] = {}

        def all_ready() -> bool:
            for name, sidecar in self.sidecars.items():
                if name not in ready_at and sidecar.ready():
                    ready_at[name] = time.monotonic()
            return len(ready_at) == len(self.sidecars) and all(app.healthy() for app in self.apps.values())

        if not wait_until(all_ready, timeout=self.profile.timeouts.startup):
            missing = sorted(set(self.sidecars) - set(ready_at))
            raise UserError(f"the local mesh did not start within {self.profile.timeouts.startup:.0f}s "
                            f"(sidecars not ready: {', '.join(missing) or 'none'}; see logs in {logs})")
        self._wait_served([(sidecar, Pending(kind, version))
                           for sidecar in self.sidecars.values() for kind, version in sidecar.versions.items()])
        self.intents = baseline
        self._record_startup(started, sidecar_started, ready_at)

    def _start_app(self, instance: Instance) -> EchoApp:
        assert self.supervisor is not None and self.run is not None
        return EchoApp.start(self.supervisor, instance, outbound=f"127.0.0.1:{instance.outbound_port}",
                             logs=self.run.path / "logs", timeout=self.profile.timeouts.control)

    def _record_startup(self, started: float, sidecar_started: dict[str, float], ready_at: dict[str, float]) -> None:
        rss = {}
        for name, sidecar in self.sidecars.items():
            assert sidecar.child is not None
            memory = psutil.Process(sidecar.child.popen.pid).memory_full_info()
            rss[name] = {"rss_mib": round(memory.rss / 2**20, 1), "uss_mib": round(memory.uss / 2**20, 1)}
        self.startup = {
            "mesh_up_s": round(time.monotonic() - started, 3),
            "sidecar_ready_ms": {n: round((ready_at[n] - sidecar_started[n]) * 1000, 1) for n in ready_at},
            "sidecar_memory": rss,
        }

    def down(self) -> None:
        """Stop everything this mesh started; safe to call twice and after a failed `up()`."""
        if self.app_faults is not None:
            self.app_faults.thaw_all()
        for hole in self.blackholes.values():
            hole.close()
        self.blackholes.clear()
        if self.supervisor is not None:
            self.supervisor.stop_all(grace=self.profile.timeouts.shutdown_grace)
        for app in self.apps.values():
            app.close()
        for sidecar in self.sidecars.values():
            sidecar.close()
        self.apps.clear()
        self.sidecars.clear()
        if self.ports is not None:
            self.ports.release()
            self.ports = None
        if self.run is not None:
            if self.artifacts_dir is not None:  # the pki/ directory with the keys is never copied
                for kept, name in (("logs", "logs"), ("xds", "config")):
                    if (self.run.path / kept).is_dir():
                        shutil.copytree(self.run.path / kept, self.artifacts_dir / name, dirs_exist_ok=True)
            self.run.remove()
            self.run = None
        self.supervisor = None

    # --- configuration --------------------------------------------------------------------------------
    def _render(self, intents: Sequence[Intent]) -> dict[str, dict[str, dict[str, Any]]]:
        configs = {}
        for name, sidecar in self.sidecars.items():
            try:
                rendered = render.render(sidecar.instance, self.topology, intents, sidecar.files,
                                         http_faults=self.http_faults.get(name, ()),
                                         inbound=name not in self.inbound_closed)
            except ValueError as exc:
                raise UserError(f"cannot render the intents for the local mesh: {exc}") from None
            workload = sidecar.instance.workload.name
            configs[name] = {
                kind: run_hook(self.hook, workload, response, f"{kind} config")
                for kind, response in rendered.resources.items()
            }
        return configs

    def apply(self, intents: Sequence[Intent]) -> None:
        configs = self._render(intents)
        for kind in render.XDS_KINDS:  # in order: a route must never name a cluster not yet served
            pending = [  # a crashed sidecar reads its files when it comes back; nothing to wait for now
                (sidecar, push)
                for name, sidecar in self.sidecars.items()
                if (push := sidecar.write(kind, configs[name][kind])) is not None and self._serves(name, kind)
            ]
            self._wait_served(pending)
        self.intents = tuple(intents)

    def _serves(self, name: str, kind: str) -> bool:
        """Whether sidecar `name` is running a subscription to `kind` now (one without its inbound listener
        does not read inbound routes until the listener is back)."""
        return name not in self.crashed and not (kind == "rds_inbound" and name in self.inbound_closed)

    def _wait_served(self, pending: list[tuple[Sidecar, Pending]]) -> None:
        waiting = list(pending)

        def done() -> bool:
            waiting[:] = [(sidecar, push) for sidecar, push in waiting if not sidecar.served(push)]
            return not waiting

        if not wait_until(done, timeout=self.profile.timeouts.apply, interval=0.005):
            late = ", ".join(f"{sidecar.instance.name} ({push.kind})" for sidecar, push in waiting)
            raise UserError(f"sidecars did not serve their new config within {self.profile.timeouts.apply:.0f}s: "
                            f"{late} (raise timeouts.apply in the profile if the machine is very slow)")

    def reset(self) -> None:
        self.undo_all()
        self.apply(self.baseline)
        self.reset_apps()

    def inject(self, fault: Fault, instance: str) -> Injected:
        """Each fault acts on exactly one process or one sidecar's config (meshproof.faults says which)."""
        if instance not in self.sidecars:
            raise UserError(f"no instance {instance!r} in the local mesh")
        match fault:
            case ProxyCrash():
                undo = self._crash_proxy(instance)
            case AppError() | AppDelay() | AppCrash() | AppFreeze():
                assert self.app_faults is not None
                undo = self.app_faults.inject(fault, instance)
            case HttpFault():
                undo = self._add_http_fault(fault, instance)
            case PortRefused() | PortBlackholed():
                undo = self._close_inbound(fault, instance)
            case Impostor():
                return self._impersonate(fault, instance)
            case ControlPlaneDown():
                raise UserError("the local mesh has no control plane to stop: its proxies read files")
            case _:
                assert_never(fault)
        injected = Injected(fault, instance, undo)
        self.injected.append(injected)
        return injected

    def _crash_proxy(self, instance: str) -> Callable[[], None]:
        assert self.supervisor is not None
        self.supervisor.kill(self.sidecars[instance].name)  # SIGKILL, as a crash: no graceful drain
        self.crashed.add(instance)
        return lambda: self._restart_crashed({instance})

    def _add_http_fault(self, fault: HttpFault, instance: str) -> Callable[[], None]:
        faults = self.http_faults.setdefault(instance, [])
        if any((f.namespace, f.service) == (fault.namespace, fault.service) for f in faults):
            raise UserError(f"{instance}'s proxy already injects an HTTP fault for {fault.service}: undo it first")
        faults.append(fault)
        try:
            self.apply(self.intents)
        except BaseException:
            faults.remove(fault)
            raise

        def remove() -> None:
            faults.remove(fault)
            self.apply(self.intents)

        return remove

    def _close_inbound(self, fault: PortRefused | PortBlackholed, instance: str) -> Callable[[], None]:
        """Serve the sidecar's listeners without its inbound one (Envoy closes the port once the listener is
        removed), then hold the port for a blackhole; check that callers see what the fault promises."""
        if instance in self.inbound_closed:
            raise UserError(f"{instance}'s inbound port is already refused or blackholed: undo that fault first")
        port = self.sidecars[instance].instance.inbound_port
        self.inbound_closed.add(instance)
        try:
            self.apply(self.intents)
            if isinstance(fault, PortBlackholed):
                self.blackholes[instance] = Blackhole(port)
            self._expect_port(port, "timeout" if isinstance(fault, PortBlackholed) else "refused")
        except BaseException:
            self._reopen_inbound(instance)
            raise
        return lambda: self._reopen_inbound(instance)

    def _reopen_inbound(self, instance: str) -> None:
        hole = self.blackholes.pop(instance, None)
        if hole is not None:
            hole.close()
        self.inbound_closed.discard(instance)
        self.apply(self.intents)
        if instance not in self.crashed:
            self._expect_port(self.sidecars[instance].instance.inbound_port, "accepted")

    def _expect_port(self, port: int, outcome: str) -> None:
        timeout = self.profile.timeouts.apply
        probe_timeout = self.profile.timeouts.admin / 10
        if not wait_until(lambda: connect_outcome(port, probe_timeout) == outcome, timeout=timeout, interval=0.02):
            raise UserError(f"port {port} did not become {outcome} within {timeout:.0f}s: "
                            f"a connection was {connect_outcome(port, probe_timeout)}")

    def _impersonate(self, fault: Impostor, instance: str) -> Injected:
        """The instance's proxy is killed and an impostor takes its inbound address."""
        assert self.supervisor is not None and self.ca is not None
        target = self.topology.instance(instance)
        svid = impostor_svid(fault.certificate, target.identity, self.ca, self.svids, file_stem=f"impostor-{instance}")
        self.supervisor.kill(self.sidecars[instance].name)
        self.crashed.add(instance)
        server = ImpostorServer(target.inbound_port, svid.cert, svid.key).start()

        def undo() -> None:
            server.stop()
            self._restart_crashed({instance})

        injected = Injected(fault, instance, undo, _observe=server.observed)
        self.injected.append(injected)
        return injected

    def _restart_crashed(self, names: set[str]) -> None:
        """Bring crashed sidecars back with the config they had; wait until they serve it again."""
        assert self.supervisor is not None and self.run is not None
        restarted = [self.sidecars[name] for name in sorted(names & self.crashed)]
        for sidecar in restarted:
            sidecar.start(self.supervisor, self._bootstraps[sidecar.instance.name],
                          self.run.path / "logs" / f"envoy-{sidecar.instance.name}.log")
        if not wait_until(lambda: all(sidecar.ready() for sidecar in restarted),
                          timeout=self.profile.timeouts.startup):
            raise UserError(f"crashed sidecars did not come back within {self.profile.timeouts.startup:.0f}s")
        self.crashed -= names
        self._wait_served([(s, Pending(kind, version)) for s in restarted for kind, version in s.versions.items()
                           if self._serves(s.instance.name, kind)])

    # --- traffic and observations (the echo apps: meshproof.backends.host.calls) --------------------------
    def inbound_address(self, instance: Instance) -> tuple[str, int]:
        return "127.0.0.1", instance.inbound_port

    def diagnostics(self) -> dict[str, Any]:
        complaints = {name: lines for name, sidecar in self.sidecars.items() if (lines := sidecar.admin.complaints())}
        config = self.artifacts_dir / "config" if self.artifacts_dir else None
        return {"intents": [as_json(intent) for intent in self.intents], "proxy_log": complaints,
                "config": str(config) if config else "(run with --out to keep the rendered config)"}

    def load_setup(self, source: str, service: str, version: str, namespace: str = "default") -> LoadSetup:
        servers = self.topology.of_service(service, namespace, version)
        if len(servers) != 1:
            raise UserError(f"load needs exactly one instance of {service} {version}; the local mesh has "
                            f"{len(servers)}")
        server, client = servers[0], self._caller(source).instance
        host = f"{service}.{namespace}"
        proxies = {}
        for instance in (client, server):
            child = self.sidecars[instance.name].child
            assert child is not None
            proxies[f"envoy-{instance.name}"] = child.popen.pid
        return LoadSetup(
            baseline=LoadTarget(f"http://127.0.0.1:{server.app_port}", host),
            mesh=LoadTarget(f"http://127.0.0.1:{client.outbound_port}", host),
            proxies=proxies,
        )

    def load_target(self, source: str, service: str, namespace: str = "default") -> LoadTarget:
        if not self.topology.of_service(service, namespace):
            raise UserError(f"no service {service}.{namespace} in the local mesh")
        client = self._caller(source).instance
        return LoadTarget(f"http://127.0.0.1:{client.outbound_port}", f"{service}.{namespace}")

    def request_counts(self, service: str, version: str, namespace: str = "default") -> RequestCounts:
        total = errors = 0
        for instance in self.topology.of_service(service, namespace, version):
            stats = self.sidecars[instance.name].stats("http.inbound.downstream_rq_")
            total += int(stats.get("http.inbound.downstream_rq_completed", "0"))
            errors += int(stats.get("http.inbound.downstream_rq_5xx", "0"))
        return RequestCounts(total, errors)

    def outlier_stats(self, source: str, service: str, namespace: str = "default") -> dict[str, int]:
        """Summed over the service's clusters: the service-wide one and each version's subset, each with its own
        detector (a route to v1 ejects from the v1 subset's cluster only)."""
        sidecar = self.sidecars[self._caller(source).instance.name]
        port = next(p for ns, s, p in self.topology.services() if (ns, s) == (namespace, service))
        totals: dict[str, int] = {}
        for subset in ["", *self.topology.versions(service, namespace)]:
            prefix = f"cluster.{render.cluster_name(service, namespace, port, subset)}.outlier_detection."
            for name, value in sidecar.stats(prefix).items():
                totals[name.removeprefix(prefix)] = totals.get(name.removeprefix(prefix), 0) + int(value)
        return totals

    def addresses(self) -> dict[str, dict[str, str]]:
        return {
            i.name: {
                "calls as this workload": f"http://127.0.0.1:{i.outbound_port} (Host: <service>.<namespace>)",
                "app": f"http://127.0.0.1:{i.app_port}",
                "inbound (mTLS)": f"127.0.0.1:{i.inbound_port}",
                "proxy admin": f"http://127.0.0.1:{i.admin_port}",
                "app control": f"http://127.0.0.1:{i.control_port}",
            }
            for i in self.topology.instances
        }

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "local",
            "mesh_version": f"envoy {self._envoy_version}",
            "sidecars": len(self.sidecars),
            "sidecar_concurrency": self.profile.local.sidecar_concurrency,
            **self.startup,
        }
