"""Retry until consistent: after the mesh says a change is served, the change's observable effects must hold
for N rounds of probes in a row before a check may sample.

This is Gateway API conformance's way (`http.AwaitConvergence`: a probe repeated until it succeeds
`RequiredConsecutiveSuccesses` times in a row, 3 by default, within `MaxTimeToConsistency`): a mesh
propagates to each proxy on its own time, and one success can be a proxy that has it next to one that
has not, so a failure resets the count. Here the count and the deadline are the profile's
(`cluster.consecutive_successes`, `cluster.propagation`).

Which effects are observable without disturbing a check follows from the intents themselves
(`expectations`), and only where the answer is certain:
- a route rule that sends a header match (or everything unmatched) to one version: a request of that
  kind from a meshed caller is served by that version;
- authorization: the verdict for `guest` (a meshed identity no scenario policy grants anything) on a
  request to each service a policy targets now or did before: 403 when the intents deny it, an answer
  from the service when they allow it (Istio's semantics, which every renderer reproduces: DENY first,
  then any ALLOW must match, no policy allows).
Splits are binomial (no single request decides them) and rate-limited services are left alone (a probe
would spend the tokens a check counts). Everything else rests on the mesh's own signal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from meshproof.backend import Request, Response
from meshproof.errors import UserError
from meshproof.intent import AuthzAction, AuthzPolicy, Identity, Intent, RateLimit, Route, Rule
from meshproof.workloads.directives import SERVED_VERSION

PROBE_PATH = "/meshproof/consistency"


@dataclass(frozen=True)
class Expectation:
    """A request a workload makes, and what its response must show while the intents are in force."""

    description: str
    source: str
    request: Request
    judge: Callable[[Response], str | None]  # None when the response shows it; else what it showed


def _served_by_version(version: str) -> Callable[[Response], str | None]:
    def judge(response: Response) -> str | None:
        served = response.headers.get(SERVED_VERSION)
        return None if response.status == 200 and served == version else (
            f"{response.describe()}, version {served or 'none'}")
    return judge


def _verdict(allowed: bool) -> Callable[[Response], str | None]:
    def judge(response: Response) -> str | None:
        if allowed:
            return None if response.echo is not None else response.describe()
        return None if response.status == 403 else response.describe()
    return judge


def _path_matches(pattern: str, path: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return path.endswith(pattern[1:])
    return path == pattern


def _rule_matches(rule: Rule, caller: Identity, method: str, path: str) -> bool:
    return ((not rule.principals or caller.principal in rule.principals)
            and (not rule.methods or method in rule.methods)
            and (not rule.paths or any(_path_matches(pattern, path) for pattern in rule.paths)))


def allowed(intents: Sequence[Intent], target: str, namespace: str, caller: Identity, method: str, path: str) -> bool:
    """Istio's authorization verdict for one request to `target` under `intents`."""
    policies = [i for i in intents if isinstance(i, AuthzPolicy) and (i.target, i.namespace) == (target, namespace)]
    if any(_rule_matches(rule, caller, method, path)
           for policy in policies if policy.action is AuthzAction.DENY for rule in policy.rules):
        return False
    allows = [policy for policy in policies if policy.action is AuthzAction.ALLOW]
    return not allows or any(_rule_matches(rule, caller, method, path) for policy in allows for rule in policy.rules)


def _route_expectations(route: Route, source: str) -> list[Expectation]:
    found = []
    for index, rule in enumerate(route.rules):
        weighted = [version for version, weight in rule.splits.items() if weight > 0]
        earlier = route.rules[:index]
        headers = {match.name: match.exact for match in rule.match}
        shadowed = any(all(headers.get(m.name) == m.exact for m in other.match) for other in earlier)
        if len(weighted) != 1 or shadowed:
            continue
        what = " and ".join(f"{name}: {value}" for name, value in headers.items()) or "no routing header"
        request = Request(route.service, PROBE_PATH, headers=headers, namespace=route.namespace)
        found.append(Expectation(f"{source} -> {route.service} with {what} is served by {weighted[0]}", source,
                                 request, _served_by_version(weighted[0])))
    return found


def expectations(intents: Sequence[Intent], previous: Sequence[Intent], *, source: str,
                 identity: Identity) -> list[Expectation]:
    """What must be observable once `intents` replace `previous`, as seen from workload `source` (whose
    identity no policy of the scenario grants anything)."""
    limited = {(i.target, i.namespace) for i in intents if isinstance(i, RateLimit)}
    guarded = {(i.target, i.namespace) for i in (*intents, *previous) if isinstance(i, AuthzPolicy)}
    found = []
    for target, namespace in sorted(guarded - limited):
        verdict = allowed(intents, target, namespace, identity, "GET", PROBE_PATH)
        request = Request(target, PROBE_PATH, namespace=namespace)
        found.append(Expectation(f"{source} -> {target}: {'allowed' if verdict else 'denied (403)'}", source, request,
                                 _verdict(verdict)))
    current_guards = {(i.target, i.namespace) for i in intents if isinstance(i, AuthzPolicy)}
    for route in (i for i in intents if isinstance(i, Route)):
        key = (route.service, route.namespace)
        if key not in limited and key not in current_guards:  # a guarded service answers guest with 403
            found += _route_expectations(route, source)
    return found


@dataclass(frozen=True)
class Convergence:
    rounds: int  # probe rounds it took, the successful ones included
    seconds: float


def until_consistent(round_problems: Callable[[], list[str]], *, consecutive: int, timeout: float,
                     interval: float, what: str) -> Convergence:
    """Repeat `round_problems()` (one round of probes; [] when all held) until `consecutive` rounds in a row
    are clean; UserError with the last problems when `timeout` s pass first. No wait after a clean round."""
    started = time.monotonic()
    rounds = clean = 0
    last: list[str] = []
    while True:
        problems = round_problems()
        rounds += 1
        if not problems:
            clean += 1
            if clean >= consecutive:
                return Convergence(rounds, round(time.monotonic() - started, 3))
            continue
        clean, last = 0, problems
        if time.monotonic() - started >= timeout:
            raise UserError(f"{what}: not consistent within {timeout:g} s ({rounds} probe rounds; {consecutive} in a "
                            f"row needed): {'; '.join(last)[:600]} (raise cluster.propagation in the profile if the "
                            "cluster is very slow)")
        time.sleep(interval)
