"""The CRD validator refuses what `kubectl apply` would (unknown fields, wrong types, bad enums, broken
patterns and bounds, unserved versions), the vendored CRDs are the published ones, and every CEL rule the
validator skips on a rendered manifest is one these tests know and check themselves."""

import copy
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meshproof import scenario
from meshproof.backends import istio, linkerd
from meshproof.backends.kube import conventions, gamma, schema
from meshproof.backends.kube.schema import CrdCatalog, InvalidManifest
from meshproof.durations import parse_duration
from tests.test_render_istio import SEED_ROUTE, VARIANTS
from tests.test_render_linkerd import SUPPORTED_SEED

REPO = Path(__file__).resolve().parent.parent
SHARED_CRDS = REPO.parent / "shared" / "crds"
VIRTUAL_SERVICE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
    "metadata": {"name": "order-service", "namespace": "default"},
    "spec": {"hosts": ["order-service"], "http": [
        {"route": [{"destination": {"host": "order-service", "subset": "v1"}}],
         "timeout": "10s", "retries": {"attempts": 3, "perTryTimeout": "3s", "retryOn": "5xx"}}]},
}
PEER_AUTHENTICATION: dict[str, Any] = {
    "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
    "metadata": {"name": "default", "namespace": "default"}, "spec": {"mtls": {"mode": "STRICT"}},
}
DESTINATION_RULE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
    "metadata": {"name": "order-service", "namespace": "default"},
    "spec": {"host": "order-service", "trafficPolicy": {"outlierDetection": {"consecutive5xxErrors": 5}}},
}
SERVER: dict[str, Any] = {
    "apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server",
    "metadata": {"name": "order-service", "namespace": "default"},
    "spec": {"podSelector": {"matchLabels": {"app": "order-service"}}, "port": "http"},
}
MESH_TLS: dict[str, Any] = {
    "apiVersion": "policy.linkerd.io/v1alpha1", "kind": "MeshTLSAuthentication",
    "metadata": {"name": "callers", "namespace": "default"}, "spec": {"identities": ["*"]},
}
POLICY_ROUTE: dict[str, Any] = {
    "apiVersion": "policy.linkerd.io/v1beta3", "kind": "HTTPRoute",
    "metadata": {"name": "reads", "namespace": "default"},
    "spec": {"parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "order-service"}],
             "rules": [{"matches": [{"method": "GET"}], "timeouts": {"request": "10s"}}]},
}
GAMMA_ROUTE = gamma.render(SEED_ROUTE, scenario.WORKLOADS, mesh="test")[-1]
SERVICE = conventions.service("order-service", "default", 80, {"app": "order-service"})
DELETE = object()


def changed(base: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """A copy of `base` with the value at the dotted `path` (list indices as numbers) replaced or deleted."""
    result = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = result
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return result


def test_the_vendored_crds_serve_what_the_renderers_write_and_name_their_source() -> None:
    kinds = schema.vendored().kinds()
    for kind in ("security.istio.io/v1 PeerAuthentication", "security.istio.io/v1 AuthorizationPolicy",
                 "networking.istio.io/v1 VirtualService", "networking.istio.io/v1 DestinationRule",
                 "networking.istio.io/v1alpha3 EnvoyFilter", "policy.linkerd.io/v1beta3 Server",
                 "policy.linkerd.io/v1beta3 HTTPRoute", "policy.linkerd.io/v1alpha1 AuthorizationPolicy",
                 "policy.linkerd.io/v1alpha1 MeshTLSAuthentication",
                 "policy.linkerd.io/v1alpha1 NetworkAuthentication",
                 "policy.linkerd.io/v1alpha1 HTTPLocalRateLimitPolicy",
                 "gateway.networking.k8s.io/v1 HTTPRoute"):
        assert kind in kinds
    sources = {
        "istio.yaml": "istio/api tag 1.30.3 commit 2e43f07b30b6744bc8252fce39fb58b03f85ff8b",
        "linkerd.yaml": "linkerd2 tag edge-26.8.3 commit 19a0d90d5a4a65e0b976f079ba8a5f1dab12c005",
        "gateway-api.yaml": "gateway-api tag v1.6.1 commit 8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3",
    }
    for name, source in sources.items():
        assert source in (schema.CRD_DIR / name).read_text().split("\n---\n", 1)[0]


@pytest.mark.skipif(not SHARED_CRDS.is_dir(), reason="the shared CRD bundles are not next to this checkout")
def test_the_vendored_crds_are_what_the_vendoring_tool_extracts_from_the_published_bundles(
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("vendor_crds", REPO / "tools" / "vendor_crds.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "vendor_crds", tool)  # its dataclasses look their module up there
    spec.loader.exec_module(tool)
    for name in schema.VENDORED_FILES:
        expected = tool.vendored_text(name, (SHARED_CRDS / name).read_text())
        assert expected == (schema.CRD_DIR / name).read_text()


#: (manifest, a part of the validator's error or None when valid); tests/test_apiserver_manifests.py
#: checks that the real API server agrees with each verdict.
VALIDATOR_CASES: list[tuple[dict[str, Any], str | None]] = [
    (VIRTUAL_SERVICE, None),
    (changed(VIRTUAL_SERVICE, "spec.gatways", ["mesh"]), "spec.gatways: unknown field"),
    (changed(VIRTUAL_SERVICE, "spec.http.0.retries.tries", 3), "spec.http[0].retries.tries: unknown field"),
    (changed(VIRTUAL_SERVICE, "status", {"anything": True}), None),  # status preserves unknown fields
    (changed(VIRTUAL_SERVICE, "extra", 1), "extra: unknown field"),
    (changed(VIRTUAL_SERVICE, "spec.http.0.retries.attempts", "three"),
     "spec.http[0].retries.attempts: 'three' is not of type 'integer'"),
    (changed(VIRTUAL_SERVICE, "spec.http.0.retries.attempts", True), "is not of type 'integer'"),
    (changed(VIRTUAL_SERVICE, "spec.http.0.timeout", None), "spec.http[0].timeout: null is not allowed"),
    (changed(VIRTUAL_SERVICE, "spec.hosts", "order-service"),
     "spec.hosts: 'order-service' is not of type 'array'"),
    (changed(PEER_AUTHENTICATION, "spec.mtls.mode", "STRICTEST"),
     "spec.mtls.mode: 'STRICTEST' is not one of"),
    (changed(DESTINATION_RULE, "spec.host", DELETE), "spec: 'host' is a required property"),
    (changed(DESTINATION_RULE, "spec.trafficPolicy.outlierDetection.consecutive5xxErrors", None),
     None),  # nullable
    (changed(DESTINATION_RULE, "spec.trafficPolicy.outlierDetection.consecutive5xxErrors", -1),
     "-1 is less than the minimum of 0"),
    (changed(DESTINATION_RULE, "metadata.name", "Order_Service"),
     "metadata.name: 'Order_Service' does not match"),
    (changed(DESTINATION_RULE, "metadata.namespace", DELETE), "metadata.namespace: required"),
    (changed(DESTINATION_RULE, "metadata.uid", "x"), "metadata.uid: unknown field"),
    (changed(DESTINATION_RULE, "metadata.labels", {"a/b/c": "x"}), "is not a qualified name"),
    (changed(DESTINATION_RULE, "metadata.labels", {"app": "a b"}),
     "metadata.labels.app: 'a b' does not match"),
    (changed(PEER_AUTHENTICATION, "apiVersion", "security.istio.io/v1alpha1"),
     "is not served (served: v1, v1beta1)"),
    (changed(PEER_AUTHENTICATION, "kind", "RequestAuthentication"), "no CustomResourceDefinition"),
    (SERVER, None),
    (changed(SERVER, "spec.port", 8080), None),  # int-or-string
    (changed(SERVER, "spec.port", 80.5), "spec.port: 80.5 is not valid under any of the given schemas"),
    (changed(SERVER, "spec.port", DELETE), "spec: 'port' is a required property"),
    (MESH_TLS, None),
    (changed(MESH_TLS, "spec.identityRefs", [{"kind": "ServiceAccount", "name": "guest"}]),
     "spec: {'identities'"),  # oneOf: identities or identityRefs, not both
    (POLICY_ROUTE, None),
    (changed(POLICY_ROUTE, "spec.rules.0.timeouts.request", "10 parsecs"), "is not a 'duration'"),
    (changed(POLICY_ROUTE, "spec.rules.0.matches", [{"method": "GET"}] * 9), "is too long"),
    (changed(POLICY_ROUTE, "spec.rules.0.matches.0.method", "FETCH"), "'FETCH' is not one of"),
    (GAMMA_ROUTE, None),
    (changed(GAMMA_ROUTE, "spec.rules.1.timeouts.request", "10 seconds"), "does not match '^([0-9]{1,5}"),
    (changed(GAMMA_ROUTE, "spec.rules.0.backendRefs.0.weight", -1), "-1 is less than the minimum of 0"),
    (changed(GAMMA_ROUTE, "spec.parentRefs.0.port", 70000), "70000 is greater than the maximum of 65535"),
    (changed(GAMMA_ROUTE, "spec.rules.0.retry", {"attempts": 2}),
     "unknown field"),  # the experimental channel's, not the standard one's
    (SERVICE, None),
    (changed(SERVICE, "spec.ports.0.targetPort", 8080), None),
    (changed(SERVICE, "spec.ports.0.nodeport", 30000), "spec.ports[0].nodeport: unknown field"),
    (changed(SERVICE, "spec.ports.0.port", "80"), "spec.ports[0].port: '80' is not of type int"),
    (changed(SERVICE, "spec.selector", ["app"]), "spec.selector: expected an object"),
    (changed(SERVICE, "apiVersion", "v2"), "is not served"),
    (changed(SERVICE, "metadata.namespace", DELETE), "metadata.namespace: required"),
]


@pytest.mark.parametrize(("manifest", "error"), VALIDATOR_CASES)
def test_the_validator_accepts_what_the_api_server_accepts_and_names_the_field_it_refuses(
        manifest: dict[str, Any], error: str | None) -> None:
    errors = schema.validate(manifest)
    if error is None:
        assert errors == []
    else:
        assert any(error in message for message in errors), errors


def test_check_names_each_refused_manifest() -> None:
    refused = changed(PEER_AUTHENTICATION, "spec.mtls.mode", "OFF")
    with pytest.raises(InvalidManifest, match=r"PeerAuthentication default/default: spec\.mtls") as raised:
        schema.check([VIRTUAL_SERVICE, refused])
    assert len(raised.value.errors) == 1


WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "Widget", "plural": "widgets"},
             "versions": [
                 {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object",
                     "properties": {"spec": {
                         "type": "object",
                         "x-kubernetes-validations": [{"rule": "self.size > 0", "message": "too small"}],
                         "properties": {
                             "tags": {"type": "array", "items": {"type": "string"},
                                      "x-kubernetes-list-type": "set"},
                             "ports": {"type": "array", "x-kubernetes-list-type": "map",
                                       "x-kubernetes-list-map-keys": ["port", "protocol"],
                                       "items": {"type": "object", "required": ["port", "protocol"], "properties": {
                                           "port": {"type": "integer"}, "protocol": {"type": "string"}}}},
                             "size": {"x-kubernetes-int-or-string": True},
                             "wait": {"type": "string", "format": "duration"},
                             "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                         }}}}}},
                 {"name": "v0", "served": False, "storage": False,
                  "schema": {"openAPIV3Schema": {"type": "object"}}},
             ]},
}
WIDGET: dict[str, Any] = {"apiVersion": "example.com/v1", "kind": "Widget",
                          "metadata": {"name": "w", "namespace": "default"}, "spec": {}}


WIDGET_CASES: list[tuple[dict[str, Any], str | None]] = [
    ({"tags": ["a", "b"], "ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "UDP"}]}, None),
    ({"tags": ["a", "a"]}, "has non-unique elements"),
    ({"ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"}]},
     "duplicate entry for map keys"),
    ({"size": 3}, None),
    ({"size": "30%"}, None),
    ({"size": 1.5}, "is not valid under any of the given schemas"),
    ({"wait": "1h30m"}, None),
    ({"wait": "soon"}, "is not a 'duration'"),
    ({"free": {"any": {"thing": [1]}}}, None),
]


@pytest.mark.parametrize(("spec", "error"), WIDGET_CASES)
def test_list_types_int_or_string_formats_and_preserved_fields_follow_structural_schema_rules(
        spec: dict[str, Any], error: str | None) -> None:
    catalog = CrdCatalog([WIDGET_CRD])
    errors = catalog.validate({**WIDGET, "spec": spec})
    assert errors == [] if error is None else any(error in message for message in errors), errors
    assert catalog.validate({**WIDGET, "apiVersion": "example.com/v0"}) == [
        "apiVersion: example.com/v0 Widget is not served (served: v1)"]


def test_cel_rules_are_listed_with_their_paths_never_evaluated() -> None:
    catalog = CrdCatalog([WIDGET_CRD])
    (rule,) = catalog.skipped_rules(WIDGET)
    assert (rule.path, rule.rule, rule.value) == ("spec", "self.size > 0", {})
    assert catalog.validate(WIDGET) == []  # the rule would fail on an empty spec: it was not evaluated
    rules = {(r.path, r.value) for r in schema.skipped_rules(VIRTUAL_SERVICE)}
    assert rules == {("spec.http[0].timeout", "10s"), ("spec.http[0].retries.perTryTimeout", "3s")}
    assert schema.skipped_rules(SERVER) == []  # Linkerd's CRDs carry no CEL rules


def _no_filters(rule: dict[str, Any]) -> bool:
    """These rules only constrain filters, which the renderers never write: they hold vacuously."""
    return "filters" not in rule and all("filters" not in backend for backend in rule.get("backendRefs", []))


def _parent_key(ref: dict[str, Any]) -> tuple[str, ...]:
    return (ref.get("group", "gateway.networking.k8s.io"), ref.get("kind", "Gateway"), ref["name"],
            ref.get("namespace") or "")


#: (the start of a CEL rule's text, the property it states, transcribed to Python for rendered values)
KNOWN_RULES: list[tuple[str, Callable[[Any], bool]]] = [
    ("duration(self) >= duration('1ms')", lambda value: parse_duration(value) >= 0.001),
    ('!self.contains("*")', lambda value: "*" not in value),
    ('self.all(key, !key.contains("*"))', lambda labels: all("*" not in key for key in labels)),
    ("self.all(key, key.size() != 0)", lambda labels: all(labels)),
    ("(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0)",
     lambda spec: sum(key in spec for key in ("selector", "targetRef", "targetRefs")) <= 1),
    ("(has(self.workloadSelector) ? 1 : 0)",
     lambda spec: sum(key in spec for key in ("workloadSelector", "targetRefs")) <= 1),
    ("(has(self.serviceAccounts) || has(self.notServiceAccounts))",
     lambda source: not {"serviceAccounts", "notServiceAccounts"} & set(source)
     or not {"principals", "notPrincipals", "namespaces", "notNamespaces"} & set(source)),
    ("has(self.portLevelMtls)",
     lambda spec: "portLevelMtls" not in spec or bool(spec.get("selector", {}).get("matchLabels"))),
    ('has(self.context) ? ((self.context == "WAYPOINT")',
     lambda match: (match.get("context") == "WAYPOINT") == ("waypoint" in match)),
    ("self.all(p1, self.all(p2,", lambda refs: all(
        bool(a.get("sectionName")) == bool(b.get("sectionName"))
        for a in refs for b in refs if _parent_key(a) == _parent_key(b))),
    ("self.all(p1, self.exists_one(p2,", lambda refs: len({(*_parent_key(r), r.get("sectionName") or "")
                                                           for r in refs}) == len(refs)),
    ("(self.size() > 0 ? self[0].matches.size() : 0)",
     lambda rules: sum(len(rule.get("matches", [])) for rule in rules) <= 128),
    ("(has(self.backendRefs) && size(self.backendRefs) > 0) ? (!has(self.filters)", _no_filters),
    ("(has(self.filters) && self.filters.exists_one(f, has(f.requestRedirect)", _no_filters),
    ("(has(self.filters) && self.filters.exists_one(f, has(f.urlRewrite)", _no_filters),
    ("(has(self.backendRefs) && self.backendRefs.exists_one(b, (has(b.filters) && b.filters.exists_one(f, "
     "has(f.requestRedirect)", _no_filters),
    ("(has(self.backendRefs) && self.backendRefs.exists_one(b, (has(b.filters) && b.filters.exists_one(f, "
     "has(f.urlRewrite)", _no_filters),
    ("(size(self.group) == 0 && self.kind == 'Service') ? has(self.port)",
     lambda ref: ref.get("group", "") != "" or ref.get("kind", "Service") != "Service" or "port" in ref),
    ("!(has(self.request) && has(self.backendRequest)",
     lambda timeouts: "backendRequest" not in timeouts or "request" not in timeouts
     or parse_duration(timeouts["backendRequest"]) <= parse_duration(timeouts["request"])),
]


def everything_rendered() -> list[dict[str, Any]]:
    manifests = [m for intents in VARIANTS.values() for m in istio.render(intents, scenario.WORKLOADS)]
    manifests += linkerd.render(SUPPORTED_SEED, scenario.WORKLOADS, probe_paths=("/healthz",))
    return manifests + gamma.render(SEED_ROUTE, scenario.WORKLOADS, mesh="test")


def test_every_cel_rule_on_a_rendered_field_is_known_here_and_holds() -> None:
    checked = 0
    for manifest in everything_rendered():
        for rule in schema.skipped_rules(manifest):
            known = [check for start, check in KNOWN_RULES if rule.rule.startswith(start)]
            where = f"{manifest['kind']} {manifest['metadata']['name']} {rule.path}"
            assert len(known) == 1, f"{where}: transcribe and check the rule {rule.rule!r}"
            assert known[0](rule.value), f"{where}: {rule.message}"
            checked += 1
    assert checked > 50
