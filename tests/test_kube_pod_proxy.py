"""Calls as and to the echo apps of a cluster, through a real kube-apiserver's pod proxy, end to end: a request
as a workload and its answer, a batch, attempts, the app-error fault and its undo, an outside client's probe,
and the errors of the transport. Runs tests/pod_proxy_in_netns.py in a network namespace of its own (the API
server refuses to proxy to loopback addresses), which needs root, as the local Istio mesh does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from meshproof import builds
from meshproof.runs import processes_of
from meshproof.shipped import CHECKOUT_DIR


def test_calls_reach_the_echo_apps_through_the_api_server_s_pod_proxy(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private network namespace")
    builds.ensure_all(("etcd", "kube-apiserver"))  # before leaving the host's network (the Go module proxy)
    env = {**os.environ, "MESHPROOF_STATE_DIR": str(tmp_path), "PYTHONPATH": str(CHECKOUT_DIR)}
    done = subprocess.run(["unshare", "--net", "--", sys.executable, "-m", "tests.pod_proxy_in_netns"],
                          capture_output=True, text=True, timeout=300, cwd=CHECKOUT_DIR, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"first": 503, "batch": 50, "plain": "http", "tls": seen["tls"]}
    assert seen["tls"] in ("timeout", "tls_handshake_failed", "tls_error", "closed_without_bytes", "reset")
    assert processes_of(tmp_path) == [] and list(tmp_path.glob("run-*")) == []
