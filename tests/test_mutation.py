"""Every check goes red against a mesh that breaks the property it guards.

Each case runs `meshproof run --only CAPABILITY --envoy-config-hook tests.mutants:MUTANT -- -k SELECT`
on a real local mesh and asserts that the check failed with a message naming the broken property.
The mutants themselves, and what each breaks, are in tests/mutants.py.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.mutation import assert_red, run_mutant, suite_check_ids


@dataclass(frozen=True)
class Case:
    mutant: str
    capability: str
    check: str  # the check id without the capability: with [param], or without it for every param
    words: list[str]  # its failure message must name all of them
    measured: Mapping[str, Any] = field(default_factory=dict)  # values in results.json: equal, or a predicate
    select: str = ""  # pytest -k choosing just that check; default: the check's name
    profile: str = ""  # YAML of a profile to run with, if not the default
    hooks: str = "tests.mutants"  # the module the mutant is in

    @property
    def id(self) -> str:
        return f"{self.mutant}->{self.capability}.{self.check}"


Entry = Mapping[str, Any]  # a measured value in results.json, with its context
CHAOS_MUTANTS = "tests.chaos_mutants"
ABSORBED = "a_dead_or_refusing_v1_endpoint_is_absorbed_by_retries_and_outlier_detection"


def between(low: float, high: float) -> Callable[[Entry], bool]:
    def inside(entry: Entry) -> bool:
        return bool(low <= entry["value"] <= high)

    inside.__qualname__ = f"between({low}, {high})"
    return inside


def share(version: str, low: float, high: float) -> Callable[[Entry], bool]:
    def inside(entry: Entry) -> bool:
        return bool(low <= entry["value"].get(version, 0) <= high)

    inside.__qualname__ = f"share of {version} in [{low}, {high}]"
    return inside


def beyond_window(by: int) -> Callable[[Entry], bool]:
    """At least `by` above the window's top (by > 0) or below its bottom (by < 0)."""
    def outside(entry: Entry) -> bool:
        low, high = entry["window"]
        return bool(entry["value"] >= high + by) if by > 0 else bool(entry["value"] <= low + by)

    outside.__qualname__ = f"beyond the window by {by:+d}"
    return outside


LOAD_CHECK = "the_mesh_adds_less_latency_than_the_slo_under_open_model_load"
SMOKE = "load:\n  profile: smoke\n"  # one rate for a few seconds: enough to see a broken mesh path
THRESHOLD_CHECK = "an_endpoint_is_ejected_after_exactly_n_consecutive_errors_and_not_after_n_minus_1"
IDENTITY = "a_meshed_caller_reaches_order_service_which_sees_its_identity"
IMPOSTOR = "a_meshed_caller_refuses_an_impostor_at_its_destinations_address"
K_PLUS_ONE = "an_upstream_failing_the_first_k_attempts_succeeds_after_exactly_k_plus_one"
ALWAYS_FAILS = "an_upstream_that_always_fails_is_tried_exactly_one_plus_attempts_times"
PER_TRY = "a_first_attempt_slower_than_the_per_try_timeout_is_abandoned_and_retried"
TIMEOUT_504 = "an_upstream_slower_than_the_route_timeout_gets_504_at_the_timeout"
EJECTION_TIME = "an_ejected_endpoint_gets_no_traffic_for_the_base_ejection_time_then_returns"
MAX_EJECTED = "no_more_endpoints_than_max_ejection_percent_are_ejected"
GATEWAY = "consecutive_gateway_errors_eject_on_503_but_not_on_500"
OVERFLOW = "concurrency_beyond_the_pool_is_refused_at_once_with_the_overflow_response"
BURST = "a_burst_lets_exactly_the_bucket_through_and_limits_the_rest"
HEADERS = "responses_carry_the_rate_limit_headers"
REFILL = "after_a_refill_interval_tokens_per_fill_requests_pass_again"
ROLLOUT = "a_healthy_canary_is_rolled_out_step_by_step"
FAILING_CANARY = "a_failing_canary_is_rolled_back_to_100_0"


def _rollout_step(step: int, factor: float) -> Case:
    """A rollout step's canary weight 20% off: the rollout fails at that step, with the share it measured."""
    served = round(step * factor) / 100
    return Case(f"canary_weight_{step}_x{factor:g}".replace(".", "_"), "canary", ROLLOUT,
                [f"canary split at rollout step {step}%"],
                measured={f"step_{step}_shares": share("v2", served - 0.04, served + 0.04)}, select="healthy_canary")


CASES = [
    # --- mtls: refusals (with their positive control passing) and the caller's own verification
    Case('client_cert_optional', 'mtls', 'strict_mtls_refuses_a_tls_client_without_a_client_certificate',
         ['strict mTLS', 'client certificate required', 'HTTP 200'], measured={"http_responses": 4}),
    Case('foreign_ca_trusted', 'mtls', 'strict_mtls_refuses_a_client_certificate_from_a_foreign_ca',
         ['strict mTLS', 'chain to the mesh CA'], measured={"http_responses": 4}),
    Case('plaintext_accepted', 'mtls', 'strict_mtls_refuses_a_plaintext_client_as_the_mesh_documents[plaintext_closed]',
         ['strict mTLS, plaintext client', 'HTTP 200'], measured={"http_responses": 4}, select="plaintext_client"),
    Case('plaintext_accepted', 'mtls', 'permissive_lets_plaintext_in_and_strict_shuts_it_out_again',
         ['strict mTLS after a switch']),
    Case('permissive_ignored', 'mtls', 'permissive_lets_plaintext_in_and_strict_shuts_it_out_again',
         ['PERMISSIVE mTLS', 'not let in']),
    Case('client_identity_not_forwarded', 'mtls', IDENTITY, ['mTLS identity', 'no caller identity'],
         measured={"identity_seen": None}),
    Case('caller_trusts_any_ca', 'mtls', f'{IMPOSTOR}[foreign_ca]', ['caller verification', 'reached an impostor'],
         measured={"impostor_requests": 1}, select="impostor and foreign_ca"),
    Case('caller_accepts_any_identity', 'mtls', f'{IMPOSTOR}[other_identity]',
         ['caller verification', 'another workload identity'], measured={"impostor_requests": 1},
         select="impostor and other_identity"),
    # --- authz
    Case('rbac_filters_removed', 'authz', 'an_identity_the_policy_does_not_list_gets_403',
         ['principal not listed', 'guest', 'expected 403']),
    Case('rbac_shadow_only', 'authz', 'prometheus_may_get_metrics_but_not_post_them_nor_read_orders',
         ['authz for prometheus', 'POST /metrics']),
    Case('principal_misspelled', 'authz', 'a_listed_identity_may_use_a_listed_method_on_the_orders_api',
         ['ALLOW by principal', '403']),
    Case('methods_ignored', 'authz', 'a_listed_identity_with_a_method_not_listed_gets_403',
         ['method not listed', 'DELETE']),
    Case('path_prefix_widened', 'authz', 'a_listed_identity_on_a_path_outside_the_prefix_gets_403',
         ['outside the prefix', 'expected 403']),
    Case('deny_ignored', 'authz', 'a_deny_rule_wins_over_an_allow_rule_that_also_matches',
         ['DENY precedence', 'POST']),
    Case('empty_allow_allows_all', 'authz', 'an_allow_policy_with_no_rules_denies_everything',
         ['no rules allows nothing']),
    Case('policy_leaks_to_other_workloads', 'authz', 'a_workload_with_no_policy_lets_everyone_in',
         ['no policy means allow all', '403']),
    # --- retries: attempts x0.8 and x1.2 (3 -> 2 and 4), conditions, the per-try timeout x0.8 and x1.2
    Case('retries_x0_8', 'retries', ALWAYS_FAILS, ['number of attempts is wrong', 'saw 3', 'exactly 4'],
         measured={"attempts_at_app": 3}),
    Case('retries_x1_2', 'retries', ALWAYS_FAILS, ['saw 5', 'exactly 4'], measured={"attempts_at_app": 5}),
    Case('retries_x0_8', 'retries', f'{K_PLUS_ONE}[3]', ['retries on 5xx', 'expected HTTP 200'],
         measured={"attempts_at_app": 3}, select="first_k and 3"),
    Case('status_errors_never_retried', 'retries', K_PLUS_ONE, ['retries on 5xx', 'expected HTTP 200'],
         measured={"attempts_at_app": 1}),
    Case('retry_on_4xx_too', 'retries', 'a_status_not_in_retry_on_is_not_retried',
         ['retryOn is not honoured', 'after 4 attempts', 'after 1'], measured={"attempts_at_app": 4}),
    Case('reset_never_retried', 'retries', 'a_reset_is_retried_only_when_reset_is_listed', ['retries on reset'],
         measured={"attempts_with_reset": 1}),
    Case('reset_always_retried', 'retries', 'a_reset_is_retried_only_when_reset_is_listed',
         ['retryOn is not honoured'], measured={"attempts_with_connect-failure": 2}),
    Case('connect_failure_never_retried', 'retries', 'a_refused_connection_is_retried_when_connect_failure_is_listed',
         ['retries on connect-failure', 'expected none'], measured={"failed_with_connect-failure": between(1, 20)}),
    Case('no_per_try_timeout', 'retries', PER_TRY, ['per-try timeout', 'after 1 attempts'],
         measured={"attempts_at_app": 1}),
    Case('per_try_timeout_x0_8', 'retries', PER_TRY, ['per-try timeout', 'outside'],
         measured={"attempts_at_app": 2, "latency": between(395, 460)}),
    Case('per_try_timeout_x1_2', 'retries', PER_TRY, ['per-try timeout', 'outside'],
         measured={"attempts_at_app": 2, "latency": between(595, 750)}),
    # --- timeouts: T x0.8 and x1.2, no timeout, and T short enough to cut a fast upstream
    Case('route_timeout_x1_2', 'timeouts', TIMEOUT_504, ['route timeout', 'outside'],
         measured={"status": 504, "latency": between(1195, 1400)}),
    Case('route_timeout_x0_8', 'timeouts', TIMEOUT_504, ['route timeout', 'outside'],
         measured={"status": 504, "latency": between(795, 940)}),
    Case('no_route_timeout', 'timeouts', TIMEOUT_504, ['route timeout', 'HTTP 200', 'expected 504'],
         measured={"status": 200}),
    Case('route_timeout_x1_2', 'timeouts', 'the_route_timeout_bounds_the_sum_of_retries',
         ['route timeout does not bound retries', 'outside'], measured={"latency": between(1195, 1400)}),
    Case('route_timeout_x0_4', 'timeouts', 'an_upstream_faster_than_the_route_timeout_succeeds',
         ['route timeout', 'gave HTTP 504'], measured={"status": 504}),
    # --- outlier: each threshold, the base ejection time and maxEjectionPercent x0.8 and x1.2
    Case('consecutive_5xx_x1_2', 'outlier', THRESHOLD_CHECK,
         ['outlier threshold', 'returned 6 consecutive errors', 'expected exactly 5'],
         measured={"errors_before_ejection": 6}),
    Case('consecutive_5xx_x0_8', 'outlier', THRESHOLD_CHECK,
         ['outlier threshold', 'one fewer than 5', 'must stay in the pool'],
         measured={"errors_then_requests_below_threshold": [4, 0]}),
    Case('consecutive_gateway_errors_x1_2', 'outlier', GATEWAY,
         ['outlier gateway errors', 'returned 6 consecutive 503s', 'expected exactly 5'],
         measured={"gateway_errors_before_ejection": 6}),
    Case('consecutive_gateway_errors_x0_8', 'outlier', GATEWAY,
         ['outlier gateway errors', 'returned 4 consecutive 503s', 'expected exactly 5'],
         measured={"gateway_errors_before_ejection": 4}),
    Case('gateway_errors_count_every_5xx', 'outlier', GATEWAY,
         ['outlier gateway errors', '500 is not a gateway error']),
    Case('base_ejection_time_x1_2', 'outlier', EJECTION_TIME, ['outlier ejection time', 'outside'],
         measured={"ejected_for": between(2.39, 2.7)}),
    Case('base_ejection_time_x0_8', 'outlier', EJECTION_TIME, ['outlier ejection time', 'outside'],
         measured={"ejected_for": between(1.59, 1.88)}),
    Case('max_ejection_percent_x1_2', 'outlier', MAX_EJECTED,
         ['maxEjectionPercent', '4 of 4 endpoints were ejected', 'allows exactly 3'], measured={"ejected": 4}),
    Case('max_ejection_percent_x0_8', 'outlier', MAX_EJECTED,
         ['maxEjectionPercent', '2 of 4 endpoints were ejected', 'allows exactly 3'], measured={"ejected": 2}),
    # --- connpool: each limit x0.8 and x1.2 (4 -> 3 and 5), and no limits at all
    Case('max_connections_x1_2', 'connpool', OVERFLOW, ['connection pool overflow', 'expected 8 answered'],
         measured={"accepted": 9, "refused_at_once": 7, "counted_at_app": 9}),
    Case('max_connections_x0_8', 'connpool', OVERFLOW, ['connection pool overflow', 'expected 8 answered'],
         measured={"accepted": 7, "refused_at_once": 9, "counted_at_app": 7}),
    Case('max_pending_requests_x1_2', 'connpool', OVERFLOW, ['connection pool overflow', 'expected 8 answered'],
         measured={"accepted": 9, "refused_at_once": 7}),
    Case('max_pending_requests_x0_8', 'connpool', OVERFLOW, ['connection pool overflow', 'expected 8 answered'],
         measured={"accepted": 7, "refused_at_once": 9}),
    Case('no_circuit_breaker', 'connpool', OVERFLOW, ['connection pool overflow', '0 refused'],
         measured={"accepted": 16, "refused_at_once": 0}),
    Case('max_connections_x0_8', 'connpool', 'concurrency_within_the_pool_sees_no_overflow',
         ['connection pool overflow within the limits', 'expected all 8 answered'],
         measured={"accepted": 7, "counted_at_app": 7}),
    # --- ratelimit: the bucket and the refill (tokens_per_fill, fill_interval) x0.8 and x1.2, the headers
    Case('max_tokens_x1_2', 'ratelimit', BURST, ['rate limit', 'to pass (bucket 100 + refill)'],
         measured={"passed": beyond_window(+15)}),
    Case('max_tokens_x0_8', 'ratelimit', BURST, ['rate limit', 'to pass (bucket 100 + refill)'],
         measured={"passed": beyond_window(-15)}),
    Case('rate_limit_not_enforced', 'ratelimit', BURST, ['rate limit', '0 got 429'], measured={"limited": 0}),
    Case('max_tokens_x1_2', 'ratelimit', HEADERS, ['rate limit headers', 'x-ratelimit-limit is', 'expected 100']),
    Case('rate_limit_headers_off', 'ratelimit', HEADERS, ['rate limit headers', 'passing responses lack']),
    Case('limited_header_missing', 'ratelimit', HEADERS, ['x-rate-limit-remaining', 'expected 0 on every 429'],
         measured={"limited_header_on_429s": 0}),
    Case('limited_header_on_every_response', 'ratelimit', HEADERS,
         ['passing responses carry x-rate-limit-remaining', 'limited responses only'],
         measured={"limited_header_on_200s": between(100, 10_000)}),
    Case('tokens_per_fill_x1_2', 'ratelimit', REFILL, ['rate limit refill', 'tokens_per_fill 20 per 1s'],
         measured={"passed_after_refill": beyond_window(+1)}),
    Case('tokens_per_fill_x0_8', 'ratelimit', REFILL, ['rate limit refill', 'tokens_per_fill 20 per 1s'],
         measured={"passed_after_refill": beyond_window(-1)}),
    Case('fill_interval_x1_2', 'ratelimit', REFILL, ['rate limit refill', 'tokens_per_fill 20 per 1s'],
         measured={"passed_after_refill": beyond_window(-1)}),
    Case('fill_interval_x0_8', 'ratelimit', REFILL, ['rate limit refill', 'tokens_per_fill 20 per 1s'],
         measured={"passed_after_refill": beyond_window(+1)}),
    # --- canary: a 2-point shift of each split, 20% of each rollout step
    Case('weights_88_12', 'canary', 'a_weighted_split_is_accurate[weights]', ['canary split 90/10', 'does not match'],
         measured={"split_shares": share("v2", 0.105, 0.135)},
         select='a_weighted_split_is_accurate and not even_weights and not three_way'),
    Case('weights_52_48', 'canary', 'a_weighted_split_is_accurate[even_weights]',
         ['canary split 50/50', 'does not match'], measured={"split_shares": share("v2", 0.465, 0.495)},
         select='a_weighted_split_is_accurate and even_weights'),
    Case('weights_48_32_20', 'canary', 'a_weighted_split_is_accurate[three_way_weights]',
         ['canary split 50/30/20', 'does not match'], measured={"split_shares": share("v2", 0.305, 0.335)},
         select='a_weighted_split_is_accurate and three_way'),
    Case('premium_header_ignored', 'canary', 'premium_users_go_to_v2_and_everyone_else_follows_the_split',
         ['canary header routing', 'premium must go to v2 only'], select='premium_users'),
    Case('stale_by_one_update', 'canary', 'new_weights_are_served_before_the_first_request_after_apply',
         ['canary propagation', 'not in force yet'], select='new_weights_are_served'),
    Case('canary_weight_doubled', 'canary', ROLLOUT, ['canary split at rollout step 10%'], select='healthy_canary'),
    *(_rollout_step(step, factor) for step in (10, 25, 50, 75) for factor in (0.8, 1.2)),
    Case('stale_by_one_update', 'canary', FAILING_CANARY, ['canary split at rollout step 10%'],
         select='failing_canary'),
    Case('errors_hidden_from_callers', 'canary', FAILING_CANARY, ['canary rollback', 'never rolled back'],
         select='failing_canary'),
    # --- load
    Case('outbound_delay_20ms', 'load', LOAD_CHECK,
         ['load SLO', 'at 200 req/s the mesh adds p50', 'wholly above the SLO of 3000 us', 'the mesh adds p99'],
         profile=SMOKE),
    Case('outbound_overloaded', 'load', LOAD_CHECK,
         ['measurement is invalid', 'below 98% of the 200.0 req/s offered'], profile=SMOKE),
    Case('outbound_aborts_some', 'load', LOAD_CHECK,
         ['requests failed under load', 'the mesh path failed', 'HTTP 503'], profile=SMOKE),
    # --- chaos: each experiment runs under load (tests/chaos_mutants.py)
    # without resilience a dead v1 endpoint gets about a quarter of the requests under LEAST_REQUEST (26.8%
    # [23.7, 30.1] measured), so the bound is ten times the budget X = 1.25%, not the quarter itself
    Case('resilience_ignored', 'chaos', ABSORBED, ['not absorbed'], select='absorbed', hooks=CHAOS_MUTANTS,
         measured={"error_rate_during_fault": between(0.125, 1.0)}),
    Case('retries_forced', 'chaos', 'killing_one_of_two_v1_apps_without_the_resilience_intents_costs_requests',
         ['without resilience', 'the control must show errors'], select='without_the_resilience', hooks=CHAOS_MUTANTS),
    Case('resilience_ignored', 'chaos', 'a_frozen_v1_app_costs_latency_bounded_by_the_per_try_timeout_and_no_errors',
         ['freeze-v1-app'], select='frozen', hooks=CHAOS_MUTANTS),
    Case('connect_fails_fast_unretried', 'chaos',
         'a_blackholed_v1_endpoint_costs_at_most_its_share_at_the_route_timeout',
         ['blackhole-v1-port', "the route timeout's 504"], select='blackholed', hooks=CHAOS_MUTANTS),
    Case('abort_doubled', 'chaos', 'aborting_10_percent_at_the_callers_proxy_fails_exactly_that_share_unretried',
         ['abort-at-proxy', 'does not contain the injected 10%'], select='aborting', hooks=CHAOS_MUTANTS),
    Case('delay_halved', 'chaos', 'delaying_20_percent_at_the_callers_proxy_shows_in_the_tail_not_in_errors',
         ['delay-at-proxy', 'p99 during the fault'], select='delaying', hooks=CHAOS_MUTANTS),
    Case('split_ignored', 'chaos', 'a_slow_canary_fails_its_share_at_the_route_timeout_and_trips_the_rollout_gate',
         ['slow-canary', 'the rollout gate'], select='slow_canary', hooks=CHAOS_MUTANTS),
]


def _param(case: Case) -> object:
    """A load or chaos mutant is judged by a measurement under load, which needs the machine to itself
    (`solo`): beside a Go build or another mesh it would rightly call its own run invalid instead of seeing
    the mutant."""
    return pytest.param(case, id=case.id, marks=[pytest.mark.solo] if case.capability in ("load", "chaos") else [])


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_the_check_goes_red_against_its_mutant(tmp_path: Path, case: Case) -> None:
    results = run_mutant(tmp_path, case.mutant, case.capability, case.select or case.check, profile=case.profile,
                         hooks=case.hooks, timeout=900)
    assert_red(results, f"{case.capability}.{case.check}", *case.words, measured=case.measured)
    if case.capability in ("load", "chaos"):  # the measurement is recorded even when its check fails
        recorded = results[case.capability]
        assert recorded and all(entry["check"].startswith(f"{case.capability}.{case.check}") for entry in recorded)
    if case.capability == "chaos":
        assert all(Path(entry["journal"]).is_file() for entry in results["chaos"])


#: Checks no mutant of the local mesh can turn red, and why.
UNKILLABLE_HERE = {
    "mtls.strict_mtls_refuses_a_plaintext_client_as_the_mesh_documents[plaintext_forbidden]":
        "not_supported on the local mesh (mtls.plaintext_forbidden: it closes the connection instead)",
}


def test_every_check_has_a_mutant_that_turns_it_red() -> None:
    """Collected from suites/ as the plugin names them; a case without [param] covers every param."""
    covered = {f"{case.capability}.{case.check}" for case in CASES}
    missing = [check for check in suite_check_ids() if check not in UNKILLABLE_HERE and check not in covered
               and check.split("[", 1)[0] not in covered]
    assert not missing, f"checks no mutant turns red (add a mutant and a Case): {missing}"
    assert set(UNKILLABLE_HERE) <= set(suite_check_ids()), "UNKILLABLE_HERE names a check that no longer exists"
