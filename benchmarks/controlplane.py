"""What the local control plane costs: start-up, memory with and without the CRDs, apply rates, stop.

Starts etcd + kube-apiserver from the build cache N times (building them first if missing) and prints,
per start, the seconds to a healthy etcd and a ready API server, the resident memory of each program
idle and after installing the vendored Istio, Linkerd and Gateway API CRDs, how long the CRDs took to
be Established, how long every rendered manifest (istio and linkerd, default profile) took to apply and
read back, and how long stop() took. Then the median of each.

    python benchmarks/controlplane.py --starts 3
"""

from __future__ import annotations

import argparse
import statistics
import time

from meshproof.backends.kube import acceptance, schema
from meshproof.backends.kube.controlplane import LocalControlPlane


def measure_once() -> dict[str, float]:
    started = time.monotonic()
    plane = LocalControlPlane.start()
    try:
        figures = {"start_s": time.monotonic() - started, **plane.startup}
        figures.update({f"{name}_idle_mib": mib for name, mib in plane.memory_mib().items()})
        cluster = plane.cluster()
        began = time.monotonic()
        cluster.install_crds(schema.CRD_DIR / name for name in schema.VENDORED_FILES)
        figures["crds_established_s"] = time.monotonic() - began
        time.sleep(5)  # let the API server build the CRDs' handlers and OpenAPI before reading memory
        figures.update({f"{name}_with_crds_mib": mib for name, mib in plane.memory_mib().items()})
        items = [item for mesh in ("istio", "linkerd") for item in acceptance.rendered(mesh, None)]
        for namespace in acceptance.namespaces_of(items):
            cluster.create_namespace(namespace)
        began = time.monotonic()
        verdicts = acceptance.judge(cluster, items)
        figures["apply_and_read_back_ms_each"] = (time.monotonic() - began) * 1000 / len(items)
        assert all(verdict.accepted_as_sent for verdict in verdicts)
        cluster.api.close()
    finally:
        began = time.monotonic()
        plane.stop()
        figures["stop_s"] = time.monotonic() - began
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for index in range(args.starts):
        runs.append(measure_once())
        print(f"start {index + 1}: " + ", ".join(f"{key} {value:.2f}" for key, value in runs[-1].items()), flush=True)
    print("median:  " + ", ".join(f"{key} {statistics.median(run[key] for run in runs):.2f}" for key in runs[0]))


if __name__ == "__main__":
    main()
