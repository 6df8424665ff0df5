"""What real Istio on this host costs: start-up, memory, and how long a change takes to be served.

Brings the local Istio mesh up with the scenario's workloads (building istiod and the API server
first if missing), then applies `--applies` changes alternating between kinds of intent that reach
the proxies in different xDS types: a 90/10 split and a 50/50 split (routes), an AuthorizationPolicy
(listeners), and back to the baseline. Each apply() is timed from the first server-side apply to
the moment every proxy serves it (meshproof.backends.istio.local.propagation). Prints the start-up
phases, resident memory (istiod idle and after the applies, kube-apiserver, etcd, the median Envoy)
and the apply times (median, p90, max), then stops everything.

    python benchmarks/istio_local.py --applies 40 [--mesh-version 2026-04]
"""

from __future__ import annotations

import argparse
import statistics
import time

from meshproof import scenario
from meshproof.backends.istio.local import releases
from meshproof.backends.istio.local.mesh import LocalIstio
from meshproof.intent import Intent, Route, RouteRule
from meshproof.profile import Profile


def changes() -> list[tuple[str, list[Intent]]]:
    route = [("split 90/10", {"v1": 90, "v2": 10}), ("split 50/50", {"v1": 50, "v2": 50})]
    kinds: list[tuple[str, list[Intent]]] = [
        (name, [*scenario.BASELINE, Route(scenario.ORDER_SERVICE, (RouteRule(splits=splits),))])
        for name, splits in route]
    kinds.append(("authorization policy", [*scenario.BASELINE, scenario.seed_authorization_policy()]))
    kinds.append(("baseline", list(scenario.BASELINE)))
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applies", type=int, default=40)
    parser.add_argument("--mesh-version", default=releases.DEFAULT)
    args = parser.parse_args()
    mesh = LocalIstio(Profile(), release=releases.release(args.mesh_version))
    started = time.monotonic()
    try:
        mesh.up(scenario.WORKLOADS, scenario.BASELINE)
        facts = mesh.describe()
        print(f"up in {time.monotonic() - started:.1f} s (builds included); in the namespace: "
              f"API server ready {facts['apiserver_ready_s']:.1f} s, istiod ready {facts['istiod_ready_s']:.1f} s, "
              f"{facts['sidecars']} proxies ready {facts['agents_ready_s']:.1f} s, mesh up {facts['mesh_up_s']:.1f} s")
        print(f"memory MiB at start: {facts['memory_mib']}")
        durations: dict[str, list[float]] = {}
        kinds = changes()
        for index in range(args.applies):
            name, intents = kinds[index % len(kinds)]
            began = time.monotonic()
            mesh.apply(intents)
            durations.setdefault(name, []).append(time.monotonic() - began)
        every = sorted(d for values in durations.values() for d in values)
        for name, values in durations.items():
            print(f"apply {name}: median {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms "
                  f"({len(values)} applies)")
        p90 = every[int(len(every) * 0.9)] if every else 0.0
        print(f"apply, all {len(every)}: median {statistics.median(every) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, "
              f"max {every[-1] * 1000:.0f} ms")
        assert mesh.istiod is not None
        print(f"istiod RSS after the applies: {mesh.istiod.memory_mib():.1f} MiB")
    finally:
        began = time.monotonic()
        mesh.down()
        print(f"down in {time.monotonic() - began:.1f} s")


if __name__ == "__main__":
    main()
