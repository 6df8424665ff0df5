"""Every mtls and authz check goes red against a mesh that breaks the property it guards."""

from pathlib import Path

import pytest

from tests.mutation import assert_red, run_mutant

CASES = [
    # (mutant, capability, check, words its failure message must contain)
    ("client_cert_optional", "mtls", "strict_mtls_refuses_a_tls_client_without_a_client_certificate",
     ["strict mTLS", "client certificate required", "HTTP 200"]),
    ("foreign_ca_trusted", "mtls", "strict_mtls_refuses_a_client_certificate_from_a_foreign_ca",
     ["strict mTLS", "chain to the mesh CA"]),
    ("plaintext_accepted", "mtls", "strict_mtls_gives_a_plaintext_client_no_http_response",
     ["strict mTLS, plaintext client", "HTTP 200"]),
    ("plaintext_accepted", "mtls", "permissive_lets_plaintext_in_and_strict_shuts_it_out_again",
     ["strict mTLS after a switch"]),
    ("permissive_ignored", "mtls", "permissive_lets_plaintext_in_and_strict_shuts_it_out_again",
     ["PERMISSIVE mTLS", "not let in"]),
    ("client_identity_not_forwarded", "mtls", "a_meshed_caller_reaches_order_service_which_sees_its_identity",
     ["mTLS identity", "no caller identity"]),
    ("rbac_filters_removed", "authz", "an_identity_the_policy_does_not_list_gets_403",
     ["principal not listed", "guest", "expected 403"]),
    ("rbac_shadow_only", "authz", "prometheus_may_get_metrics_but_not_post_them_nor_read_orders",
     ["authz for prometheus", "POST /metrics"]),
    ("principal_misspelled", "authz", "a_listed_identity_may_use_a_listed_method_on_the_orders_api",
     ["ALLOW by principal", "api-gateway", "403"]),
    ("methods_ignored", "authz", "a_listed_identity_with_a_method_not_listed_gets_403",
     ["method not listed", "DELETE"]),
    ("path_prefix_widened", "authz", "a_listed_identity_on_a_path_outside_the_prefix_gets_403",
     ["outside the prefix", "/api/v2/orders/42"]),
    ("deny_ignored", "authz", "a_deny_rule_wins_over_an_allow_rule_that_also_matches",
     ["DENY precedence", "POST"]),
    ("empty_allow_allows_all", "authz", "an_allow_policy_with_no_rules_denies_everything",
     ["no rules allows nothing"]),
    ("policy_leaks_to_other_workloads", "authz", "a_workload_with_no_policy_lets_everyone_in",
     ["no policy means allow all", "403"]),
]


@pytest.mark.parametrize(("mutant", "capability", "check", "words"), CASES, ids=[f"{c[0]}->{c[2]}" for c in CASES])
def test_the_check_goes_red_against_its_mutant(
    tmp_path: Path, mutant: str, capability: str, check: str, words: list[str]
) -> None:
    results = run_mutant(tmp_path, mutant, capability, check)
    assert_red(results, f"{capability}.{check}", *words)
