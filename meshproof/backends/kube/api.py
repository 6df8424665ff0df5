"""The Kubernetes API as meshproof calls it: JSON requests through the `kubernetes` client's ApiClient.

Why not the generated typed APIs: meshproof sends objects of any kind (core kinds and the CRDs of
three meshes), and server-side apply is one request shape for all of them. Why not
`kubernetes.dynamic`: its discoverer keeps a cache file per server address in the system temp
directory that nothing removes, shared by every run that meets the same address. Discovery here is
in memory: the resource list of one group version (`/api/v1`, `/apis/<group>/<version>`), fetched
again when a kind is missing from it (its CRD may have just been installed).

Every request takes the client's configuration (server, CA, token or client certificate), so the same
calls work against the local control plane, kind, or an existing cluster. What the server answers
with an error becomes `ApiError` with its status, reason and message; a server that cannot be reached
becomes a UserError naming it. Warnings the server sends (`Warning:` headers) are kept in `warnings`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3

from meshproof.errors import UserError

Json = dict[str, Any]


class ApiError(UserError):
    """The API server answered a request with an error status."""

    def __init__(self, method: str, path: str, status: int, reason: str, message: str) -> None:
        self.method, self.path, self.status, self.reason, self.message = method, path, status, reason, message
        super().__init__(f"{method} {path}: {status} {reason}: {message}")


@dataclass(frozen=True)
class ResourceType:
    """Where objects of one kind live: `/apis/<group>/<version>[/namespaces/<ns>]/<plural>`."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def collection(self, namespace: str | None = None) -> str:
        prefix = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if self.namespaced:
            if not namespace:
                raise UserError(f"{self.kind} is namespaced: the object must name its metadata.namespace")
            prefix += f"/namespaces/{namespace}"
        return f"{prefix}/{self.plural}"

    def path(self, name: str, namespace: str | None = None) -> str:
        return f"{self.collection(namespace)}/{name}"


class KubeApi:
    """A connection to one API server (an ApiClient from a kubeconfig or built for the local server)."""

    def __init__(self, client: Any, *, description: str) -> None:
        self.client = client
        self.description = description  # "the API server at https://127.0.0.1:20002", for messages
        self.warnings: list[str] = []
        self._types: dict[tuple[str, str], ResourceType] = {}

    @classmethod
    def from_kubeconfig(cls, path: Path, *, context: str | None = None) -> KubeApi:
        from kubernetes import config

        try:
            client = config.new_client_from_config(config_file=str(path), context=context)  # type: ignore[no-untyped-call]
        except (OSError, config.ConfigException) as exc:
            raise UserError(f"kubeconfig {path}{f' context {context}' if context else ''}: {exc}") from None
        return cls(client, description=f"the API server at {client.configuration.host} ({path})")

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (), body: Any = None,
                content_type: str = "application/json", timeout: float = 30.0) -> Json:
        """One request; the decoded JSON answer. Raises ApiError for an error status."""
        status, reason, data = self.send(method, path, query=query, body=body, content_type=content_type,
                                         timeout=timeout)
        decoded = _decode(data)
        if not 200 <= status <= 299:
            message = decoded.get("message") if decoded.get("kind") == "Status" else None
            raise ApiError(method, path, status, str(decoded.get("reason") or reason),
                           str(message or data[:300].decode(errors="replace")))
        return decoded

    def send(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (), body: Any = None,
             content_type: str = "application/json", timeout: float = 30.0) -> tuple[int, str, bytes]:
        """One request, whatever it answers: (status, reason, body). For answers that need not be the API
        server's own JSON: what a pod's port returns through the pod proxy (`pods/<name>:<port>/proxy/...`)."""
        serialized = self.client.param_serialize(
            method, path, query_params=list(query), body=body, auth_settings=["BearerToken"],
            header_params={"Accept": "application/json, */*", "Content-Type": content_type},
        )
        try:
            response = self.client.call_api(*serialized, _request_timeout=timeout)
            data = response.read()
        except urllib3.exceptions.HTTPError as exc:
            raise UserError(f"cannot reach {self.description}: {exc}") from None
        self.warnings += [warning for warning in response.headers.getlist("Warning")]
        return int(response.status), str(response.reason), bytes(data)

    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        """How `kind` in `api_version` is served; UserError when the server does not serve it."""
        key = (api_version, kind)
        if key not in self._types:
            self._discover(api_version)
        try:
            return self._types[key]
        except KeyError:
            raise UserError(f"{self.description} serves no {kind} in {api_version}"
                            f"{' (is its CustomResourceDefinition installed?)' if '.' in api_version else ''}"
                            ) from None

    def _discover(self, api_version: str) -> None:
        path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        try:
            listing = self.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return
            raise
        for resource in listing.get("resources", ()):
            if "/" not in resource["name"]:  # not a subresource (pods/log, services/status)
                self._types[(api_version, resource["kind"])] = ResourceType(
                    api_version, resource["kind"], resource["name"], bool(resource["namespaced"]))

    def path_of(self, manifest: Json) -> str:
        """The URL path of the object `manifest` describes."""
        metadata = manifest.get("metadata", {})
        kind = self.resource_type(manifest["apiVersion"], manifest["kind"])
        return kind.path(metadata["name"], metadata.get("namespace") if kind.namespaced else None)


def _decode(data: bytes) -> Json:
    if not data:
        return {}
    try:
        decoded = json.loads(data)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {"items": decoded}


def describe(manifest: Json) -> str:
    """`Kind namespace/name` (or `Kind name` for a cluster-scoped object), for messages."""
    metadata = manifest.get("metadata", {})
    where = f"{metadata['namespace']}/" if metadata.get("namespace") else ""
    return f"{manifest.get('kind')} {where}{metadata.get('name')}"
