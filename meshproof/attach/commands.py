"""`meshproof up`, `status` and `down`: start the daemon that owns a mesh, show it, stop it."""

from __future__ import annotations

import subprocess
import sys
import time

from meshproof import runs
from meshproof.attach.state import UpState, live_state, read_state, remove_state, state_file
from meshproof.descriptor import Options, as_arguments
from meshproof.errors import UserError
from meshproof.processes import wait_until
from meshproof.profile import load_profile
from meshproof.registry import check_options
from meshproof.runs import state_root


def up(mesh: str, profile_spec: str | None, options: Options) -> int:
    """Start the mesh in a daemon of its own and return once it serves (or failed, in one line)."""
    existing = read_state()
    if existing is not None and existing.alive():
        raise UserError(f"a {existing.mesh} mesh is already up (daemon pid {existing.pid}, since {existing.started}): "
                        "meshproof down stops it")
    if existing is not None:
        raise UserError(f"a stale record of a mesh that is no longer running is in {state_file()}: "
                        "meshproof down removes it and its leftovers")
    descriptor = check_options(mesh, options)
    profile = load_profile(profile_spec)
    root = state_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    log = root / "up.log"
    argv = [sys.executable, "-m", "meshproof.attach.daemon", "--mesh", mesh, "--log", str(log)]
    argv += ["--profile", profile_spec] if profile_spec else []
    argv += as_arguments(options)
    with open(log, "ab") as output:
        daemon = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # outlives this command; its children die with it
    deadline = profile.timeouts.startup + profile.timeouts.apply
    if "cluster" in descriptor.options:  # a cluster mesh: a cluster made, a mesh installed, workloads rolled out
        cluster = profile.cluster
        deadline += cluster.create + cluster.install + cluster.rollout

    def settled() -> bool:
        state = read_state()
        return daemon.poll() is not None or (state is not None and state.status != "starting")

    wait_until(settled, timeout=deadline, interval=0.05)
    state = read_state()
    if state is None or state.status != "ready":
        failed = state is not None and bool(state.error)
        reason = state.error if state is not None and state.error else f"see {log}"
        if daemon.poll() is None:
            daemon.terminate()
            daemon.wait(timeout=profile.timeouts.startup)
        remove_state()
        raise UserError(f"the {mesh} mesh did not come up{'' if failed else f' within {deadline:.0f}s'}: {reason}")
    _print_state(state)
    print(f"meshproof: {mesh} mesh up (daemon pid {state.pid}); meshproof down stops it")
    return 0


def status() -> int:
    state = live_state()
    _print_state(state)
    return 0


def down(*, timeout: float = 60.0) -> int:
    state = read_state()
    if state is None:
        raise UserError("no mesh is up: nothing to stop")
    process = state.daemon().alive()
    if process is None:
        remove_state()
        leftovers = _clean_leftovers()
        print(f"meshproof: the mesh of pid {state.pid} was no longer running; removed its record"
              f"{f' and {leftovers} leftover run(s)' if leftovers else ''}")
        return 0
    started = time.monotonic()
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except Exception:
        process.kill()
    remove_state()
    _clean_leftovers()
    print(f"meshproof: {state.mesh} mesh down in {time.monotonic() - started:.1f}s")
    return 0


def _clean_leftovers() -> int:
    leftovers = runs.leftover_runs()
    for run_dir in leftovers:
        runs.kill_processes(run_dir.processes())
        run_dir.remove()
    return len(leftovers)


def _print_state(state: UpState) -> None:
    print(f"{state.mesh} mesh, profile {state.profile}, {state.run.get('mesh_version', '')}, daemon pid {state.pid}, "
          f"up since {state.started}")
    print(f"control API (meshproof.attach.remote.connect()): {state.control_url}")
    for instance, addresses in state.addresses.items():
        print(f"  {instance}")
        for what, address in addresses.items():
            print(f"    {what:<24} {address}")
