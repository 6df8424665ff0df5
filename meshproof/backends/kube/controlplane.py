"""A local Kubernetes API server: etcd and kube-apiserver from the build cache, on loopback ports.

What it is for: a real API server on a machine without Docker or kind, to judge manifests (strict
server-side apply, admission included), to test the shared Kubernetes layer, and to give a mesh's
control plane (istiod) a cluster to watch. What it is not: a whole cluster. No controller manager,
scheduler or kubelet runs, so objects are validated, defaulted, admitted and stored, but no
controller acts on them (pods are not scheduled, deleted namespaces are not finalised, no garbage
collection). It is meshproof's own cluster: every namespace on it is meshproof's.

`LocalControlPlane.start()` reserves a PortBlock (etcd client and peer, the API server's secure
port), makes a RunDir holding etcd's data and the keys (a CA and a serving certificate for
127.0.0.1, an admin bearer token in a token file, a service-account signing key, all 0600), starts
etcd and waits for its /health, starts kube-apiserver (token authentication, RBAC authorisation,
service-account tokens signed by that key) and waits for /readyz and the `default` namespace, then
writes a kubeconfig. `stop()` stops the API server, then etcd (SIGTERM, then SIGKILL), releases the
ports and removes the directory, data and keys included. A start that fails stops what it started
and raises UserError with the cause the program logged. Both programs run under the Supervisor, so
they die with the process that started them and `meshproof cleanup` finds them after a SIGKILL.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import re
import secrets
import ssl
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshproof import builds
from meshproof.backends.host.ports import PortBlock
from meshproof.backends.kube.api import KubeApi
from meshproof.backends.kube.cluster import Cluster
from meshproof.errors import UserError
from meshproof.processes import Child, Supervisor, wait_until
from meshproof.runs import RunDir, state_root

ADMIN_USER = "meshproof-admin"
ADMIN_GROUP = "system:masters"  # bypasses RBAC, as kind's admin does; everyone else is judged by RBAC
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CIDR = "10.96.0.0/12"
CONTEXT = "meshproof-local"
SERVING_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local")


@dataclass(frozen=True)
class ControlPlaneTimeouts:
    """Seconds. Measured here (2 cores, busy with other work): etcd healthy 0.5-1 s and the API server
    ready 4-5 s after the start, once 13 s; the margins are for a machine busier still."""

    etcd_ready: float = 30.0
    apiserver_ready: float = 90.0
    stop_grace: float = 5.0


class LocalControlPlane:
    """etcd + kube-apiserver for one process; use `start()` and `stop()` (or `with`)."""

    def __init__(self, timeouts: ControlPlaneTimeouts) -> None:
        self.timeouts = timeouts
        self.run: RunDir | None = None
        self.ports: PortBlock | None = None
        self.supervisor: Supervisor | None = None
        self.server = ""
        self.kubeconfig = Path()
        self.ca_file = Path()
        self.token = ""
        self.startup: dict[str, float] = {}

    @classmethod
    def start(cls, *, timeouts: ControlPlaneTimeouts | None = None, binaries: dict[str, Path] | None = None,
              progress: builds.BuildProgress | None = None) -> LocalControlPlane:
        """A ready control plane. `binaries` (name -> path) default to the build cache, built if missing."""
        found = binaries or builds.ensure_all(("etcd", "kube-apiserver"), progress=progress)
        plane = cls(timeouts or ControlPlaneTimeouts())
        try:
            plane._start(found["etcd"], found["kube-apiserver"])
        except BaseException:
            plane.stop()
            raise
        return plane

    def __enter__(self) -> LocalControlPlane:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _start(self, etcd: Path, apiserver: Path) -> None:
        started = time.monotonic()
        self.run = run = RunDir.create("controlplane")
        self.ports = ports = PortBlock.reserve(state_root() / "locks")
        self.supervisor = supervisor = Supervisor(run)
        etcd_port, peer_port, secure_port = ports.take(), ports.take(), ports.take()
        self.server = f"https://127.0.0.1:{secure_port}"
        pki = run.path / "pki"
        self.ca_file, serving_cert, serving_key = serving_pki(pki)
        self.token = secrets.token_urlsafe(32)
        tokens = pki / "tokens.csv"
        _write_private(tokens, f'{self.token},{ADMIN_USER},{ADMIN_USER},"{ADMIN_GROUP}"\n'.encode())
        signing_key, verifying_key = pki / "service-account.key", pki / "service-account.pub"
        key = ec.generate_private_key(ec.SECP256R1())
        _write_private(signing_key, _private_pem(key))
        verifying_key.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                serialization.PublicFormat.SubjectPublicKeyInfo))
        logs = run.path / "logs"

        etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
        child = supervisor.start("etcd", [
            str(etcd), "--name", "meshproof", "--data-dir", str(run.path / "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"meshproof={peer_url}", "--initial-cluster-state", "new",
            "--log-level", "warn",
            "--unsafe-no-fsync",  # the data is thrown away at stop; fsync only costs time on a shared disk
        ], log=logs / "etcd.log")
        self._wait(child, lambda: _etcd_healthy(etcd_url), self.timeouts.etcd_ready, f"etcd at {etcd_url}")
        self.startup["etcd_ready_s"] = round(time.monotonic() - started, 3)

        child = supervisor.start("kube-apiserver", [
            str(apiserver), f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={secure_port}",
            f"--tls-cert-file={serving_cert}", f"--tls-private-key-file={serving_key}",
            f"--cert-dir={run.path / 'apiserver'}",
            f"--token-auth-file={tokens}", "--authorization-mode=RBAC",
            f"--service-account-key-file={verifying_key}", f"--service-account-signing-key-file={signing_key}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--endpoint-reconciler-type=none",  # no kubelet answers at the advertised address
            "--profiling=false",
        ], log=logs / "kube-apiserver.log")
        checks = {"failing": "no answer yet"}
        with httpx.Client(verify=ssl.create_default_context(cafile=self.ca_file), timeout=2.0,
                          headers={"Authorization": f"Bearer {self.token}"}) as http:

            def ready() -> bool:
                checks["failing"] = self._not_ready(http)
                return not checks["failing"]

            self._wait(child, ready, self.timeouts.apiserver_ready, f"kube-apiserver at {self.server}", checks)
        self.startup["apiserver_ready_s"] = round(time.monotonic() - started, 3)
        self.kubeconfig = run.path / "kubeconfig"
        _write_private(self.kubeconfig, yaml.safe_dump(self.kubeconfig_dict()).encode())

    def _wait(self, child: Child, predicate: Callable[[], bool], timeout: float, what: str,
              checks: dict[str, str] | None = None) -> None:
        """Until `predicate()`, failing with the program's own reason when it exits or `timeout` passes
        (and with what `checks["failing"]` says was failing last)."""

        def done() -> bool:
            return child.exited() is not None or bool(predicate())

        if wait_until(done, timeout=timeout, interval=0.05) and child.exited() is None:
            return
        code = child.exited()
        if code is not None:
            raise UserError(f"{what} exited during start-up (exit {code}): {_reason(child.log)}")
        detail = f" (/readyz: {checks['failing']})" if checks else ""
        raise UserError(f"{what} not ready after {timeout:g} s{detail}; its log says: {_reason(child.log)}")

    def _not_ready(self, http: httpx.Client) -> str:
        """'' when /readyz passes and the `default` namespace exists, else what is failing."""
        try:
            readyz = http.get(f"{self.server}/readyz", params={"verbose": "1"})
            if readyz.status_code != 200:
                failing = [line.strip() for line in readyz.text.splitlines() if line.startswith("[-]")]
                return ", ".join(failing) or f"HTTP {readyz.status_code}"
            if http.get(f"{self.server}/api/v1/namespaces/default").status_code != 200:
                return "namespace default not created yet"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        return ""

    def kubeconfig_dict(self) -> dict[str, object]:
        """A kubeconfig for the admin (the token and the CA inline), as kubectl and clients read it."""
        ca = base64.b64encode(self.ca_file.read_bytes()).decode()
        return {
            "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT, "preferences": {},
            "clusters": [{"name": CONTEXT, "cluster": {"server": self.server, "certificate-authority-data": ca}}],
            "users": [{"name": ADMIN_USER, "user": {"token": self.token}}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": ADMIN_USER,
                                                       "namespace": "default"}}],
        }

    def api(self) -> KubeApi:
        """A new connection as the admin (no kubeconfig parsing, no temporary files)."""
        from kubernetes import client

        configuration = client.Configuration(host=self.server, api_key={"BearerToken": self.token},
                                             api_key_prefix={"BearerToken": "Bearer"})
        configuration.ssl_ca_cert = str(self.ca_file)
        return KubeApi(client.ApiClient(configuration), description=f"the local API server at {self.server}")

    def cluster(self) -> Cluster:
        return Cluster(self.api(), created_by_meshproof=True, kubeconfig=self.kubeconfig, context=CONTEXT,
                       run=self.run)

    def memory_mib(self) -> dict[str, float]:
        """Resident memory of each program, MiB."""
        import psutil

        assert self.supervisor is not None
        return {name: round(psutil.Process(child.popen.pid).memory_info().rss / 2**20, 1)
                for name, child in self.supervisor.children.items()}

    def stop(self) -> None:
        """Stop both programs and remove the data, keys and kubeconfig; safe to call twice."""
        if self.supervisor is not None:
            for name in ("kube-apiserver", "etcd"):  # the API server first: it would retry a gone etcd
                self.supervisor.stop(name, grace=self.timeouts.stop_grace)
            self.supervisor.stop_all(grace=self.timeouts.stop_grace)
            self.supervisor = None
        if self.ports is not None:
            self.ports.release()
            self.ports = None
        if self.run is not None:
            self.run.remove()
            self.run = None


def _etcd_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


_INTERESTING = re.compile(r"error|fail|fatal|panic|refused|in use|denied", re.IGNORECASE)


def _reason(log: Path) -> str:
    """The last line of a log that says what went wrong (etcd logs JSON: its msg and error)."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    line = next((line for line in reversed(lines) if _INTERESTING.search(line)), lines[-1] if lines else "no output")
    if line.startswith("{"):
        try:
            entry = json.loads(line)
            line = ": ".join(str(entry[key]) for key in ("msg", "error") if key in entry) or line
        except ValueError:
            pass
    return line[:400]


# --- keys -----------------------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def serving_pki(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, serving certificate, its key) for 127.0.0.1 and the in-cluster names, valid one
    day: the API server's, and any TLS server it must call on loopback (an admission webhook)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshproof local control plane CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    names += [x509.DNSName(name) for name in SERVING_NAMES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.crt", directory / "apiserver.crt", directory / "apiserver.key"
    _write_private(paths[0], ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(paths[1], cert.public_bytes(serialization.Encoding.PEM))
    _write_private(paths[2], _private_pem(key))
    return paths
