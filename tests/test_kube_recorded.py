"""What the meshes' CLIs, istiod and the proxies say, read the way the cluster backends read it, against recorded
outputs (tests/data/recorded/, written in each producer's documented format: see its README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshproof.backend import RequestCounts
from meshproof.backends.istio import cluster as istio
from meshproof.backends.istio import debug
from meshproof.backends.istio.cluster import IstioOnCluster
from meshproof.backends.kube import metrics
from meshproof.backends.kube.metrics import MetricsFormatError
from meshproof.backends.kube.portforward import response_body
from meshproof.backends.linkerd import cluster as linkerd
from meshproof.backends.linkerd.cluster import LinkerdOnCluster
from meshproof.errors import UserError
from meshproof.intent import Identity

RECORDED = Path(__file__).parent / "data" / "recorded"


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


def test_istioctl_s_own_version_is_read_from_its_json() -> None:
    assert istio.client_version(recorded("istioctl-version.json")) == "1.30.3"
    with pytest.raises(UserError, match="printed no clientVersion"):
        istio.client_version("client version: 1.30.3")


def test_istiod_s_syncz_says_which_proxies_acknowledged_and_which_refused() -> None:
    rows = debug.parse_syncz(json.loads(recorded("istiod-syncz.json")))
    gateway = rows["api-gateway-6f9c7d8b5-x2klm.default"]
    assert gateway.in_sync and not gateway.errors
    assert gateway.sent[istio.ROUTES] == "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9"
    order = rows["order-service-v1-7d9c8f6b4-4jq2w.default"]
    assert not order.in_sync and not order.errors  # routes sent, not yet acknowledged
    payment = rows["payment-service-5b7f9c6d8-pp8zr.default"]
    assert list(payment.errors) == ["type.googleapis.com/envoy.config.listener.v3.Listener"]
    assert "TokenBucket: value is required" in payment.errors["type.googleapis.com/envoy.config.listener.v3.Listener"]


def test_istiod_s_configz_gives_the_resource_version_of_each_config() -> None:
    stored = debug.parse_configz(json.loads(recorded("istiod-configz.json")))
    assert stored[("VirtualService", "default", "order-service")] == "1851"
    assert stored[("PeerAuthentication", "istio-system", "default")] == "1843"
    assert stored[("VirtualService", "meshproof-outside", "meshproof-sync")] == "1852"


def test_the_metrics_parser_reads_labels_escapes_nan_and_empty_braces() -> None:
    samples = metrics.parse(recorded("linkerd-proxy-metrics.prom"))
    escaped = next(s for s in samples if s.name == "label_escapes")
    assert escaped.labels == {"path": "C:\\dir", "quote": 'say "hi"', "newline": "a\nb"} and escaped.value == 1500
    istio_samples = metrics.parse(recorded("istio-agent-stats.prom"))
    assert metrics.total(istio_samples, "istio_agent_num_outgoing_requests") == 0  # NaN is skipped
    assert metrics.total(istio_samples, "envoy_listener_manager_total_filter_chains_draining") == 0


@pytest.mark.parametrize(("text", "error"), [
    ("istio_requests_total{reporter=destination} 1", "line 1: bad labels"),
    ("istio_requests_total{reporter=\"destination\"}", "line 1: no value"),
    ("# HELP x\n{a=\"b\"} 3", "line 2: no metric name"),
    ("x 1\ny one", "line 2: value 'one' is not a number"),
])
def test_a_malformed_exposition_names_its_line(text: str, error: str) -> None:
    with pytest.raises(MetricsFormatError, match=error):
        metrics.parse(text)


def test_istio_request_counts_are_the_destination_reporter_s_and_its_5xx() -> None:
    samples = metrics.parse(recorded("istio-agent-stats.prom"))
    # 1187 + 12 + 3 answered by this pod's proxy as the destination; the 500s it saw as a source are another's
    assert IstioOnCluster.proxy_request_counts(samples) == RequestCounts(1202, 12)


def test_istio_outlier_stats_are_the_caller_proxy_s_for_the_service_s_clusters() -> None:
    samples = metrics.parse(recorded("istio-agent-stats.prom"))
    stats = IstioOnCluster.proxy_outlier_stats(samples, "order-service", "default")
    # the service-wide cluster's counters; the subset cluster v1 (`outbound|80|v1|...`) and others are not its
    assert stats == {"ejections_active": 1, "ejections_enforced_consecutive_5xx": 3}
    assert IstioOnCluster.proxy_outlier_stats(samples, "guest", "default") == {}


def test_istio_s_listener_flux_is_visible_in_the_agent_stats() -> None:
    samples = metrics.parse(recorded("istio-agent-stats.prom"))
    assert [name for name in istio.IN_FLUX if metrics.total(samples, name)] == [
        "envoy_listener_manager_total_listeners_draining"]


def test_linkerd_request_counts_are_the_inbound_responses_and_their_5xx() -> None:
    samples = metrics.parse(recorded("linkerd-proxy-metrics.prom"))
    assert LinkerdOnCluster.proxy_request_counts(samples) == RequestCounts(547, 7)
    assert LinkerdOnCluster.proxy_outlier_stats(samples, "order-service", "default") == {
        "endpoints_ready": 1, "endpoints_pending": 1}


def test_linkerd_check_json_passes_with_a_warning_and_fails_with_the_hint() -> None:
    assert linkerd.check_results(recorded("linkerd-check.json")) == []
    assert linkerd.check_results(recorded("linkerd-check-failed.json")) == [
        'linkerd-existence: control plane pods are ready: No running pods for "linkerd-destination" '
        "(see https://linkerd.io/2/checks/#l5d-api-control-ready)"]
    assert linkerd.check_results('{"success": false, "categories": []}') == [
        "linkerd check reported failure without a failed check"]
    with pytest.raises(UserError, match="printed no check results"):
        linkerd.check_results("Linkerd core checks\n===")


def test_the_identity_each_mesh_hands_the_server_is_read_from_its_header() -> None:
    xfcc = ('By=spiffe://cluster.local/ns/default/sa/order-service;Hash=3f2c;Subject="";'
            "URI=spiffe://cluster.local/ns/default/sa/payment-service")
    seen = IstioOnCluster.peer_identity({"x-forwarded-client-cert": xfcc})
    assert seen.identity == Identity("default", "payment-service") and seen.raw == xfcc
    assert IstioOnCluster.peer_identity({}).identity is None
    client_id = "api-gateway.mp-3f2a1c-default.serviceaccount.identity.linkerd.cluster.local"
    assert LinkerdOnCluster.peer_identity({"l5d-client-id": client_id}).identity == Identity(
        "mp-3f2a1c-default", "api-gateway")
    assert LinkerdOnCluster.peer_identity({"l5d-client-id": "not an identity"}).identity is None


def test_a_debug_answer_over_a_port_forward_is_its_body_or_one_line() -> None:
    answer = (RECORDED / "istiod-debug-response.http").read_bytes()
    assert json.loads(response_body(answer, "GET /debug/syncz")) == [{"proxy": "api-gateway-6f9c7d8b5-x2klm.default"}]
    with pytest.raises(UserError, match=r"GET /debug/syncz: HTTP/1\.0 401 Unauthorized"):
        response_body(b"HTTP/1.0 401 Unauthorized\r\n\r\n", "GET /debug/syncz")
    with pytest.raises(UserError, match="GET /debug/syncz: error forwarding port 8080"):
        response_body(b"", "GET /debug/syncz", "error forwarding port 8080 to pod istiod-1: connection refused")
    with pytest.raises(UserError, match="no answer"):
        response_body(b"", "GET /debug/syncz")


def test_the_istiod_image_tag_is_the_installed_version() -> None:
    deployment = {"spec": {"template": {"spec": {"containers": [
        {"name": "discovery", "image": "docker.io/istio/pilot:1.30.3-distroless"}]}}}}
    assert istio.image_version(deployment) == "1.30.3"
    assert linkerd.linkerd_identity("web.emojivoto.serviceaccount.identity.linkerd.cluster.local") == Identity(
        "emojivoto", "web")
