"""mtls: with STRICT mutual TLS, only meshed workloads with a certificate from the mesh's CA get in.

The reference is the seed's `PeerAuthentication default` (namespace default, STRICT). "Refused" is
judged from the client's side: it must not receive any HTTP response (the evidence records exactly
how the connection ended: closed without a byte, reset, or a TLS alert). Every verdict here is
deterministic; there is no tolerance.
"""

import pytest

from meshproof import features, scenario
from meshproof.backend import Backend, RawOutcome, Request, Transport
from meshproof.checks import Check
from meshproof.intent import MtlsMode, MtlsPolicy

pytestmark = pytest.mark.capability("mtls")

STRICT = scenario.seed_peer_authentication()
PERMISSIVE = MtlsPolicy(MtlsMode.PERMISSIVE, namespace="default")
PROBE = Request(scenario.ORDER_SERVICE, "/api/v1/orders/1")


def _probe_every_instance(mesh: Backend, check: Check, transport: Transport) -> list[tuple[str, RawOutcome]]:
    seen = []
    for instance in mesh.instances(scenario.ORDER_SERVICE):
        outcome = mesh.call_unmeshed(instance, PROBE, transport)
        check.evidence({"client": f"unmeshed, {transport.value}", "to": instance, "request": PROBE.describe(),
                        "saw": outcome.outcome, "status": outcome.status, "detail": outcome.detail})
        seen.append((instance, outcome))
    return seen


def _expect_refused(check: Check, seen: list[tuple[str, RawOutcome]], property_name: str) -> None:
    answered = [f"{instance}: {outcome.describe()}" for instance, outcome in seen if outcome.got_http_response]
    check.measure("http_responses", len(answered), "responses", of=len(seen))
    check.expect(not answered, f"{property_name}: the workload answered over HTTP ({'; '.join(answered)}); "
                               "expected no HTTP response at all")


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


def test_strict_mtls_gives_a_plaintext_client_no_http_response(mesh: Backend, check: Check) -> None:
    """Under STRICT mTLS, a plaintext HTTP client outside the mesh gets no HTTP response."""
    mesh.apply([*scenario.BASELINE, STRICT])
    check.criterion("a plaintext request to every order-service instance's inbound address receives no HTTP "
                    "response (any of: closed without a byte, reset, TLS alert)")
    _expect_refused(check, _probe_every_instance(mesh, check, Transport.PLAINTEXT), "strict mTLS, plaintext client")


def test_strict_mtls_refuses_a_tls_client_without_a_client_certificate(mesh: Backend, check: Check) -> None:
    """Under STRICT mTLS, a TLS client that presents no client certificate is refused."""
    mesh.apply([*scenario.BASELINE, STRICT])
    check.criterion("a TLS request without a client certificate to every order-service instance receives no "
                    "HTTP response")
    seen = _probe_every_instance(mesh, check, Transport.TLS_NO_CLIENT_CERT)
    _expect_refused(check, seen, "strict mTLS, client certificate required")


def test_strict_mtls_refuses_a_client_certificate_from_a_foreign_ca(mesh: Backend, check: Check) -> None:
    """Under STRICT mTLS, a well-formed SPIFFE certificate from a CA the mesh does not trust is refused."""
    mesh.apply([*scenario.BASELINE, STRICT])
    check.criterion("a TLS request with a client certificate for a real workload identity, signed by a foreign "
                    "CA, receives no HTTP response from any order-service instance")
    seen = _probe_every_instance(mesh, check, Transport.TLS_FOREIGN_CA)
    _expect_refused(check, seen, "strict mTLS, client certificate must chain to the mesh CA")


@pytest.mark.requires(features.MTLS_PERMISSIVE)
def test_permissive_lets_plaintext_in_and_strict_shuts_it_out_again(mesh: Backend, check: Check) -> None:
    """Switching to PERMISSIVE lets a plaintext client in while meshed calls stay mTLS; back to STRICT
    shuts it out again."""
    check.criterion("each policy is applied and waited for (the mesh reports it served), then: PERMISSIVE -> the "
                    "plaintext client gets HTTP 200 and a meshed caller is still identified; STRICT -> no HTTP "
                    "response for the plaintext client")
    target = mesh.instances(scenario.ORDER_SERVICE)[0]
    phases = []
    for phase, policy in (("strict", STRICT), ("permissive", PERMISSIVE), ("strict again", STRICT)):
        mesh.apply([*scenario.BASELINE, policy])
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
        else:
            check.expect(
                not plaintext.got_http_response,
                f"strict mTLS after a switch ({phase}): the plaintext client got {plaintext.describe()}; "
                "expected no HTTP response",
            )
    check.measure("phases_verified", len(phases), "phases")
