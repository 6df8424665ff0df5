"""mtls: with STRICT mutual TLS, only meshed workloads with a certificate from the mesh's CA get in, and a
meshed caller talks only to the destination it asked for.

The reference is the seed's `PeerAuthentication default` (namespace default, STRICT). A refusal is judged
from the client's side, and only against a positive control in the same check: the same endpoint, right
before, answers a client outside the mesh that holds a valid mesh certificate (so "refused" cannot mean
"down" or "wrong port"). The refusal must then be the one the mesh documents for that client (a plaintext
client: the connection closed (FIN or RST) without a response byte, or the proxy's HTTP 403 where the mesh
documents that, each a feature; a missing or foreign certificate: a TLS alert); anything else (timeout,
connection refused, a reset before the TLS handshake) is inconclusive and fails saying so. The caller's
side: an impostor at the destination's address, presenting a foreign CA's certificate or another
identity's valid one, must fail the call before any request reaches it. Every verdict is deterministic;
there is no tolerance.
"""

from dataclasses import dataclass

import pytest

from meshproof import features, scenario
from meshproof.backend import Backend, FaultInjection, RawOutcome, Request, Transport, unsupported_reason
from meshproof.checks import Check, CheckInvalid
from meshproof.faults import Impostor, ImpostorCertificate
from meshproof.intent import MtlsMode, MtlsPolicy, Route, RouteRule

pytestmark = pytest.mark.capability("mtls")

STRICT = scenario.seed_peer_authentication()
PERMISSIVE = MtlsPolicy(MtlsMode.PERMISSIVE, namespace="default")
PROBE = Request(scenario.ORDER_SERVICE, "/api/v1/orders/1")


@dataclass(frozen=True)
class Refusal:
    """How a client that must not get in is refused: the ways the connection may end, and the status if over
    HTTP."""

    outcomes: frozenset[str]
    status: int | None
    text: str

    def matches(self, seen: RawOutcome) -> bool:
        return seen.outcome in self.outcomes and seen.status == self.status


#: A STRICT sidecar has no filter chain for plaintext and closes the connection without answering. Whether
#: the client sees a FIN or a RST is the kernel's: real Istio's listener peeks at the first bytes (its TLS
#: inspector) and closes with the request unread, which Linux answers with a reset (seen on every instance
#: here); the local mesh's TLS socket reads them first and closes cleanly. Both answer nothing, and the
#: positive control has just shown the endpoint up and speaking mTLS, so a reset here is that refusal, not
#: a dead endpoint.
CLOSED = Refusal(frozenset({"closed_without_bytes", "reset"}), None,
                 "the connection closed (FIN or RST) without a response byte")
FORBIDDEN = Refusal(frozenset({"http"}), 403, "HTTP 403 from the proxy")
TLS_ALERT = Refusal(frozenset({"tls_alert"}), None, "a TLS alert")
#: The documented refusals of a plaintext client, each the feature of the meshes that refuse that way.
PLAINTEXT_REFUSALS = ((CLOSED, features.MTLS_PLAINTEXT_CLOSED), (FORBIDDEN, features.MTLS_PLAINTEXT_FORBIDDEN))


def _answers_a_mesh_certificate(mesh: Backend, check: Check, instance: str) -> None:
    """The positive control: the endpoint serves a client holding a valid mesh certificate."""
    control = mesh.call_unmeshed(instance, PROBE, Transport.TLS_MESH_CERT)
    check.evidence({"client": f"unmeshed, {control.transport.value} (positive control)", "to": instance,
                    "saw": control.outcome, "status": control.status, "detail": control.detail})
    if not (control.got_http_response and control.status == 200):
        raise CheckInvalid(f"inconclusive: {instance} did not answer a client holding a valid mesh certificate "
                           f"({control.describe()}), so a refusal of anyone else proves nothing")


def _expect_refused(mesh: Backend, check: Check, transport: Transport, expected: Refusal, property_name: str) -> None:
    """Every order-service instance answers the positive control, then refuses `transport` as `expected`."""
    answered, other = [], []
    instances = mesh.instances(scenario.ORDER_SERVICE)
    for instance in instances:
        _answers_a_mesh_certificate(mesh, check, instance)
        seen = mesh.call_unmeshed(instance, PROBE, transport)
        check.evidence({"client": f"unmeshed, {transport.value}", "to": instance, "request": PROBE.describe(),
                        "saw": seen.outcome, "status": seen.status, "detail": seen.detail})
        if expected.matches(seen):
            continue
        (answered if seen.got_http_response else other).append(f"{instance}: {seen.describe()}")
    check.measure("controls_answered", len(instances), "instances")
    check.measure("refused_as_documented", len(instances) - len(answered) - len(other), "instances",
                  of=len(instances), expected=expected.text)
    check.measure("http_responses", len(answered), "responses", of=len(instances))
    check.expect(not answered, f"{property_name}: the workload answered over HTTP ({'; '.join(answered)}); "
                               f"expected {expected.text}")
    if other:
        raise CheckInvalid(f"inconclusive: {property_name}: {'; '.join(other)}; neither let in nor refused as the "
                           f"mesh documents ({expected.text})")


@pytest.mark.parametrize("caller", scenario.CALLERS)
def test_a_meshed_caller_reaches_order_service_which_sees_its_identity(
    mesh: Backend, check: Check, caller: str
) -> None:
    """A meshed caller reaches order-service, and order-service sees the caller's SPIFFE identity."""
    mesh.apply([*scenario.BASELINE, STRICT])
    expected = scenario.workload(caller).identity
    check.criterion("HTTP 200 answered by an order-service instance, and the identity the server-side proxy "
                    "passed to it equals the caller's service account (exact match, no tolerance)")
    response = mesh.call(caller, PROBE)
    check.evidence({"from": caller, "request": PROBE.describe(), "response": response.evidence()})
    check.expect(
        response.status == 200 and response.served_by is not None,
        f"mTLS reachability: {caller} -> order-service got {response.describe()}; "
        "expected HTTP 200 from an order-service instance",
    )
    seen = mesh.observed_identity(response)
    check.measure("identity_seen", str(seen.identity) if seen.identity else None, source=seen.source)
    check.evidence({"identity_evidence": seen.raw, "source": seen.source})
    check.expect(
        seen.identity == expected,
        f"mTLS identity: order-service saw {seen.identity or 'no caller identity'} in {seen.source} "
        f"({seen.raw!r}); expected {expected}",
    )


@pytest.mark.requires(features.MTLS_OUTSIDE_CERTIFICATE)
@pytest.mark.parametrize("refusal", [
    pytest.param(refusal, marks=pytest.mark.requires(feature), id=feature.name.split(".", 1)[1])
    for refusal, feature in PLAINTEXT_REFUSALS
])
def test_strict_mtls_refuses_a_plaintext_client_as_the_mesh_documents(
    mesh: Backend, check: Check, refusal: Refusal
) -> None:
    """Under STRICT mTLS, a plaintext client outside the mesh is refused the way the mesh documents."""
    mesh.apply([*scenario.BASELINE, STRICT])
    check.criterion(f"every order-service instance answers a client holding a valid mesh certificate (HTTP 200), "
                    f"then refuses a plaintext request with {refusal.text}; an HTTP answer fails, any other ending "
                    "is inconclusive")
    _expect_refused(mesh, check, Transport.PLAINTEXT, refusal, "strict mTLS, plaintext client")


@pytest.mark.requires(features.MTLS_OUTSIDE_CERTIFICATE)
def test_strict_mtls_refuses_a_tls_client_without_a_client_certificate(mesh: Backend, check: Check) -> None:
    """Under STRICT mTLS, a TLS client that presents no client certificate is refused."""
    mesh.apply([*scenario.BASELINE, STRICT])
    check.criterion("every order-service instance answers a client holding a valid mesh certificate (HTTP 200), "
                    "then ends a TLS connection without a client certificate with a TLS alert; an HTTP answer fails, "
                    "any other ending is inconclusive")
    _expect_refused(mesh, check, Transport.TLS_NO_CLIENT_CERT, TLS_ALERT,
                    "strict mTLS, client certificate required")


@pytest.mark.requires(features.MTLS_OUTSIDE_CERTIFICATE)
def test_strict_mtls_refuses_a_client_certificate_from_a_foreign_ca(mesh: Backend, check: Check) -> None:
    """Under STRICT mTLS, a well-formed SPIFFE certificate from a CA the mesh does not trust is refused."""
    mesh.apply([*scenario.BASELINE, STRICT])
    check.criterion("every order-service instance answers a client holding a valid mesh certificate (HTTP 200), "
                    "then ends a TLS connection whose client certificate (a real workload identity) a foreign CA "
                    "signed with a TLS alert; an HTTP answer fails, any other ending is inconclusive")
    _expect_refused(mesh, check, Transport.TLS_FOREIGN_CA, TLS_ALERT,
                    "strict mTLS, client certificate must chain to the mesh CA")


def _documented_plaintext_refusals(mesh: Backend) -> list[Refusal]:
    return [refusal for refusal, feature in PLAINTEXT_REFUSALS if unsupported_reason(mesh, feature) is None]


@pytest.mark.requires(features.MTLS_PERMISSIVE, features.MTLS_OUTSIDE_CERTIFICATE)
def test_permissive_lets_plaintext_in_and_strict_shuts_it_out_again(mesh: Backend, check: Check) -> None:
    """Switching to PERMISSIVE lets a plaintext client in while meshed calls stay mTLS; back to STRICT
    shuts it out again."""
    refusals = _documented_plaintext_refusals(mesh)
    refused_as = " or ".join(refusal.text for refusal in refusals)
    check.criterion("each policy is applied and waited for (the mesh reports it served), then, after the positive "
                    "control (a client holding a mesh certificate gets HTTP 200 from the same instance): PERMISSIVE "
                    "-> the plaintext client gets HTTP 200 and a meshed caller is still identified; STRICT -> the "
                    f"plaintext client is refused as the mesh documents ({refused_as})")
    target = mesh.instances(scenario.ORDER_SERVICE)[0]
    phases = []
    for phase, policy in (("strict", STRICT), ("permissive", PERMISSIVE), ("strict again", STRICT)):
        mesh.apply([*scenario.BASELINE, policy])
        _answers_a_mesh_certificate(mesh, check, target)
        plaintext = mesh.call_unmeshed(target, PROBE, Transport.PLAINTEXT)
        meshed = mesh.call(scenario.API_GATEWAY, PROBE)
        identity = mesh.observed_identity(meshed).identity
        phases.append(phase)
        check.evidence({"phase": phase, "plaintext_client": plaintext.describe(), "meshed_caller": meshed.describe(),
                        "meshed_identity": str(identity)})
        check.expect(
            identity == scenario.workload(scenario.API_GATEWAY).identity,
            f"mTLS under {policy.mode.value}: a meshed caller was not identified ({meshed.describe()}, identity "
            f"{identity}); meshed traffic must stay mutual TLS",
        )
        if policy.mode is MtlsMode.PERMISSIVE:
            check.expect(
                plaintext.got_http_response and plaintext.status == 200,
                f"PERMISSIVE mTLS: the plaintext client was not let in ({plaintext.describe()}); expected HTTP 200",
            )
        elif not any(refusal.matches(plaintext) for refusal in refusals):
            check.expect(not plaintext.got_http_response,
                         f"strict mTLS after a switch ({phase}): the plaintext client got {plaintext.describe()}; "
                         f"expected {refused_as}")
            raise CheckInvalid(f"inconclusive: strict mTLS after a switch ({phase}): the plaintext client saw "
                               f"{plaintext.describe()}, not {refused_as}")
    check.measure("phases_verified", len(phases), "phases")


@pytest.mark.requires(features.FAULT_IMPOSTOR)
@pytest.mark.parametrize("certificate", [pytest.param(c, id=c.name.lower()) for c in ImpostorCertificate])
def test_a_meshed_caller_refuses_an_impostor_at_its_destinations_address(
    mesh: Backend, faults: FaultInjection, check: Check, certificate: ImpostorCertificate
) -> None:
    """An impostor at the destination's address (a foreign CA's certificate, or another identity's valid
    one): the caller's call fails, and its request never reaches the impostor."""
    route = Route(scenario.ORDER_SERVICE, (RouteRule(splits={"v2": 100}),))  # one destination; default retries
    mesh.apply([*scenario.BASELINE, STRICT, route])
    (target,) = mesh.instances(scenario.ORDER_SERVICE, version="v2")
    check.criterion(f"api-gateway's call to order-service v2 ({target}) is answered by {target} (positive control); "
                    f"then an impostor presenting {certificate.value} takes {target}'s address: the caller's proxy "
                    "connects to it (evidence the path was exercised) and the call fails with no HTTP request "
                    "reaching the impostor")
    control = mesh.call(scenario.API_GATEWAY, PROBE)
    check.evidence({"phase": "before the impostor", "response": control.evidence()})
    if control.status != 200 or control.served_by != target:
        raise CheckInvalid(f"inconclusive: before the impostor, api-gateway -> order-service v2 got "
                           f"{control.describe()}, not HTTP 200 from {target}")
    impostor = faults.inject(Impostor(certificate), target)
    response = mesh.call(scenario.API_GATEWAY, PROBE)
    seen = impostor.observed()
    impostor.undo()
    check.evidence({"phase": "impostor in place", "response": response.evidence(), "impostor_saw": seen})
    check.measure("impostor_connections", seen.get("connections", 0), "connections")
    check.measure("impostor_requests", seen.get("requests", 0), "requests")
    check.expect(seen.get("requests", 0) == 0 and response.status != 200,
                 f"caller verification: api-gateway's request reached an impostor presenting {certificate.value} "
                 f"({seen.get('requests', 0)} requests received; the caller got {response.describe()}); expected "
                 "the call to fail before any request is sent")
    if not seen.get("connections"):
        raise CheckInvalid(f"inconclusive: the caller never connected to the impostor at {target}'s address "
                           f"({response.describe()}): its verification was not exercised")
