"""What each chaos experiment measures on this machine: error rate during the fault, p99 and its change, recovery.

Runs every experiment of chaos/ (and kill-v1-app again without the resilience intents, the control) `--repeat`
times on one local mesh, through chaoslib's run_experiment as the chaos suite does, and prints one line per run
with the machine's load average, so numbers from a busy machine are seen for what they are. Not a test.

    python benchmarks/chaos_experiments.py [--repeat N] [--only kill-v1-app,freeze-v1-app]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

from chaoslib.experiment import run_experiment
from chaoslib.loader import load_experiment

from meshproof import runs, scenario
from meshproof.backends.local.mesh import LocalMesh
from meshproof.chaos.control import measurement
from meshproof.chaos.target import bound
from meshproof.profile import Profile
from meshproof.shipped import shipped

CONTROL = "kill-v1-app:without-resilience"


def _line(name: str, entry: dict[str, Any] | None, seconds: float) -> str:
    load = os.getloadavg()[0]
    if entry is None or entry["fault"] is None:
        unmet = (entry or {}).get("steady_states", {}).get("before", {}).get("unmet")
        return f"{name:<40} load {load:5.1f}  not measured (steady state before the fault: {unmet})"
    during = entry["phases"]["during"]
    metrics = entry["metrics"]
    rate, ci = during["error_rate"], during["ci"]
    recovery = entry["recovery"]
    recovered = "never" if recovery["s"] is None else f"{recovery['s']:.2f}s"
    return (f"{name:<40} load {load:5.1f}  errors during {100 * rate:6.2f}% [{100 * ci[0]:.2f}, {100 * ci[1]:.2f}] "
            f"({during['errors']}/{during['requests']})  p99 {metrics['p99_during_fault_ms']['value']} ms "
            f"(delta {metrics['p99_delta_ms']['value']} ms)  recovery {recovered} from {recovery['from']} "
            f"(+-{recovery['resolution_s']}s)  lag p50 {entry['load']['generator_lag_p50_us']} us  {seconds:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    names = [path.stem for path in sorted(shipped("chaos").glob("*.json"))] + [CONTROL]
    if args.only:
        names = [name for name in names if name in args.only.split(",")]
    os.environ.setdefault(runs.STATE_VARIABLE, tempfile.mkdtemp(prefix="meshproof-chaos-bench-"))
    profile = Profile()
    mesh = LocalMesh(profile)
    mesh.up(scenario.WORKLOADS, scenario.BASELINE)
    try:
        for _ in range(args.repeat):
            for name in names:
                stem, _, variant = name.partition(":")
                mesh.reset()
                started = time.monotonic()
                with bound(mesh, profile):
                    journal = run_experiment(load_experiment(str(shipped("chaos") / f"{stem}.json")),
                                             settings={"runtime": {"rollbacks": {"strategy": "always"}}},
                                             experiment_vars=({"resilience": not variant}, {}))
                print(_line(name, measurement(journal), time.monotonic() - started), flush=True)
    finally:
        mesh.down()


if __name__ == "__main__":
    main()
