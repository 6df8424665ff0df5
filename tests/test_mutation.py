"""Every check goes red against a mesh that breaks the property it guards.

Each case runs `meshproof run --only CAPABILITY --envoy-config-hook tests.mutants:MUTANT -- -k SELECT`
on a real local mesh and asserts that the check failed with a message naming the broken property.
The mutants themselves, and what each breaks, are in tests/mutants.py.
"""

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mutation import assert_red, run_mutant


@dataclass(frozen=True)
class Case:
    mutant: str
    capability: str
    check: str  # the check id without the capability (with [param] where it is parametrised)
    words: list[str]  # its failure message must name all of them
    select: str = ""  # pytest -k choosing just that check; default: the check's name
    profile: str = ""  # YAML of a profile to run with, if not the default

    @property
    def id(self) -> str:
        return f"{self.mutant}->{self.capability}.{self.check}"


LOAD_CHECK = "the_mesh_adds_less_latency_than_the_slo_under_open_model_load"
SMOKE = "load:\n  profile: smoke\n"  # one rate for a few seconds: enough to see a broken mesh path
THRESHOLD_CHECK = "an_endpoint_is_ejected_after_exactly_n_consecutive_errors_and_not_after_n_minus_1"
CASES = [
    Case('client_cert_optional', 'mtls', 'strict_mtls_refuses_a_tls_client_without_a_client_certificate',
         ['strict mTLS', 'client certificate required', 'HTTP 200']),
    Case('foreign_ca_trusted', 'mtls', 'strict_mtls_refuses_a_client_certificate_from_a_foreign_ca',
         ['strict mTLS', 'chain to the mesh CA']),
    Case('plaintext_accepted', 'mtls', 'strict_mtls_gives_a_plaintext_client_no_http_response',
         ['strict mTLS, plaintext client', 'HTTP 200']),
    Case('plaintext_accepted', 'mtls', 'permissive_lets_plaintext_in_and_strict_shuts_it_out_again',
         ['strict mTLS after a switch']),
    Case('permissive_ignored', 'mtls', 'permissive_lets_plaintext_in_and_strict_shuts_it_out_again',
         ['PERMISSIVE mTLS', 'not let in']),
    Case('client_identity_not_forwarded', 'mtls', 'a_meshed_caller_reaches_order_service_which_sees_its_identity',
         ['mTLS identity', 'no caller identity']),
    Case('rbac_filters_removed', 'authz', 'an_identity_the_policy_does_not_list_gets_403',
         ['principal not listed', 'guest', 'expected 403']),
    Case('rbac_shadow_only', 'authz', 'prometheus_may_get_metrics_but_not_post_them_nor_read_orders',
         ['authz for prometheus', 'POST /metrics']),
    Case('principal_misspelled', 'authz', 'a_listed_identity_may_use_a_listed_method_on_the_orders_api',
         ['ALLOW by principal', 'api-gateway', '403']),
    Case('methods_ignored', 'authz', 'a_listed_identity_with_a_method_not_listed_gets_403',
         ['method not listed', 'DELETE']),
    Case('path_prefix_widened', 'authz', 'a_listed_identity_on_a_path_outside_the_prefix_gets_403',
         ['outside the prefix', '/api/v2/orders/42']),
    Case('deny_ignored', 'authz', 'a_deny_rule_wins_over_an_allow_rule_that_also_matches',
         ['DENY precedence', 'POST']),
    Case('empty_allow_allows_all', 'authz', 'an_allow_policy_with_no_rules_denies_everything',
         ['no rules allows nothing']),
    Case('policy_leaks_to_other_workloads', 'authz', 'a_workload_with_no_policy_lets_everyone_in',
         ['no policy means allow all', '403']),
    Case('fewer_retries', 'retries', 'an_upstream_that_always_fails_is_tried_exactly_one_plus_attempts_times',
         ['number of attempts is wrong', 'saw 3', 'exactly 4']),
    Case('more_retries', 'retries', 'an_upstream_that_always_fails_is_tried_exactly_one_plus_attempts_times',
         ['saw 5', 'exactly 4']),
    Case('fewer_retries', 'retries', 'an_upstream_failing_the_first_k_attempts_succeeds_after_exactly_k_plus_one',
         ['retries on 5xx', 'expected HTTP 200']),
    Case('retry_on_4xx_too', 'retries', 'a_status_not_in_retry_on_is_not_retried',
         ['retryOn is not honoured', 'after 4 attempts', 'expected 404 after 1']),
    Case('reset_never_retried', 'retries', 'a_reset_is_retried_only_when_reset_is_listed',
         ['retries on reset']),
    Case('reset_always_retried', 'retries', 'a_reset_is_retried_only_when_reset_is_listed',
         ['retryOn is not honoured']),
    Case('connect_failure_never_retried', 'retries', 'a_refused_connection_is_retried_when_connect_failure_is_listed',
         ['retries on connect-failure', 'expected none']),
    Case('no_per_try_timeout', 'retries', 'a_first_attempt_slower_than_the_per_try_timeout_is_abandoned_and_retried',
         ['per-try timeout', 'after 1 attempts']),
    Case('longer_route_timeout', 'timeouts', 'an_upstream_slower_than_the_route_timeout_gets_504_at_the_timeout',
         ['route timeout', 'outside']),
    Case('no_route_timeout', 'timeouts', 'an_upstream_slower_than_the_route_timeout_gets_504_at_the_timeout',
         ['route timeout', 'HTTP 200', 'expected 504']),
    Case('longer_route_timeout', 'timeouts', 'the_route_timeout_bounds_the_sum_of_retries',
         ['route timeout does not bound retries']),
    Case('higher_ejection_threshold', 'outlier', THRESHOLD_CHECK,
         ['outlier threshold', 'returned 6 consecutive errors', 'expected exactly 5']),
    Case('lower_ejection_threshold', 'outlier', THRESHOLD_CHECK,
         ['outlier threshold', 'one fewer than 5', 'must stay in the pool']),
    Case('longer_ejection', 'outlier', 'an_ejected_endpoint_gets_no_traffic_for_the_base_ejection_time_then_returns',
         ['outlier ejection time']),
    Case('max_ejection_percent_100', 'outlier', 'no_more_endpoints_than_max_ejection_percent_are_ejected',
         ['maxEjectionPercent', '3 of 4 endpoints were ejected', 'allows exactly 2']),
    Case('gateway_errors_count_every_5xx', 'outlier', 'consecutive_gateway_errors_eject_on_503_but_not_on_500',
         ['outlier gateway errors', '500 is not a gateway error']),
    Case('pool_limits_doubled', 'connpool', 'concurrency_beyond_the_pool_is_refused_at_once_with_the_overflow_response',
         ['connection pool overflow', 'expected 8 answered']),
    Case('no_circuit_breaker', 'connpool', 'concurrency_beyond_the_pool_is_refused_at_once_with_the_overflow_response',
         ['connection pool overflow', '0 refused']),
    Case('bigger_bucket', 'ratelimit', 'a_burst_lets_exactly_the_bucket_through_and_limits_the_rest',
         ['rate limit', 'to pass (bucket 100 + refill)']),
    Case('rate_limit_not_enforced', 'ratelimit', 'a_burst_lets_exactly_the_bucket_through_and_limits_the_rest',
         ['rate limit', '0 got 429']),
    Case('rate_limit_headers_off', 'ratelimit', 'responses_carry_the_rate_limit_headers',
         ['rate limit headers', 'passing responses lack']),
    Case('limited_header_missing', 'ratelimit', 'responses_carry_the_rate_limit_headers',
         ['x-rate-limit-remaining', 'expected 0 on every 429']),
    Case('faster_refill', 'ratelimit', 'after_a_refill_interval_tokens_per_fill_requests_pass_again',
         ['rate limit refill', 'tokens_per_fill 10 per 1s']),
    Case('weights_88_12', 'canary', 'a_weighted_split_is_accurate[weights]',
         ['canary split 90/10', 'does not match'],
         select='a_weighted_split_is_accurate and not even_weights and not three_way'),
    Case('premium_header_ignored', 'canary', 'premium_users_go_to_v2_and_everyone_else_follows_the_split',
         ['canary header routing', 'premium must go to v2 only'], select='premium_users'),
    Case('stale_by_one_update', 'canary', 'new_weights_are_served_before_the_first_request_after_apply',
         ['canary propagation', 'not in force yet'], select='new_weights_are_served'),
    Case('canary_weight_doubled', 'canary', 'a_healthy_canary_is_rolled_out_step_by_step',
         ['canary split at rollout step 10%'], select='healthy_canary'),
    Case('stale_by_one_update', 'canary', 'a_failing_canary_is_rolled_back_to_100_0',
         ['canary split at rollout step 10%'], select='failing_canary'),
    Case('errors_hidden_from_callers', 'canary', 'a_failing_canary_is_rolled_back_to_100_0',
         ['canary rollback', 'never rolled back'], select='failing_canary'),
    Case('outbound_delay_20ms', 'load', LOAD_CHECK,
         ['load SLO', 'at 200 req/s the mesh adds p50', 'wholly above the SLO of 3000 us', 'the mesh adds p99'],
         profile=SMOKE),
    Case('outbound_overloaded', 'load', LOAD_CHECK,
         ['measurement is invalid', 'below 98% of the 200.0 req/s offered'], profile=SMOKE),
    Case('outbound_aborts_some', 'load', LOAD_CHECK,
         ['requests failed under load', 'the mesh path failed', 'HTTP 503'], profile=SMOKE),
]


def _param(case: Case) -> object:
    """A load mutant is judged by a load measurement, which needs the machine to itself (`solo`): beside a
    Go build or another mesh it would rightly call its own run invalid instead of seeing the mutant."""
    return pytest.param(case, id=case.id, marks=[pytest.mark.solo] if case.capability == "load" else [])


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_the_check_goes_red_against_its_mutant(tmp_path: Path, case: Case) -> None:
    results = run_mutant(tmp_path, case.mutant, case.capability, case.select or case.check, profile=case.profile)
    assert_red(results, f"{case.capability}.{case.check}", *case.words)
    if case.capability == "load":  # the measurement is recorded even when its check fails
        assert results["load"] and results["load"][0]["check"] == f"load.{case.check}"
