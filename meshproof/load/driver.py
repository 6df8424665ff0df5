"""Runs a load measurement at one rate: the plan, the Locust processes, the proxies' CPU and memory, the verdict.

The meshproof side of a load run. It never imports locust: it writes the plan, starts
`python -m meshproof.load.generator` (Locust's local runner, or a master and `plan.workers` workers)
under a `meshproof.processes.Supervisor` (own process groups, parent-death signal, recorded for
`meshproof cleanup`, stopped in `finally` also on Ctrl-C), follows the events the generator writes,
and meanwhile samples the CPU time and RSS of the proxies and of the generator processes every 50 ms
on the same CLOCK_MONOTONIC the generator's t0 is on, so the analysis can attribute them to blocks.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from meshproof.backend import LoadSetup
from meshproof.load.analysis import LoadRun, RateResult, Usage, analyse
from meshproof.load.blocks import BlockRecord
from meshproof.load.profile import LoadProfile
from meshproof.load.schedule import BASELINE, MESH, Plan, Target, layout
from meshproof.processes import Child, Supervisor
from meshproof.runs import RunDir
from meshproof.workloads.directives import Echo

Progress = Callable[[str], None]
SAMPLE_INTERVAL = 0.05  # s between CPU/RSS samples: well inside a block, and ~0.1 ms of CPU each


class LoadGeneratorError(RuntimeError):
    """The load generator failed or hung; the message carries the tail of its log."""


def build_plan(profile: LoadProfile, rate: float, setup: LoadSetup, headers: Mapping[str, str]) -> Plan:
    """The plan for one rate of `profile` against `setup`'s two paths, with `headers` on every request."""
    return Plan(
        rate=rate, arrival=profile.arrival, seed=profile.seed,
        blocks=layout(warmup=profile.warmup, block_length=profile.block_length(), pairs=profile.blocks),
        targets={BASELINE: Target(setup.baseline.url, setup.baseline.host),
                 MESH: Target(setup.mesh.url, setup.mesh.host)},
        paths=tuple(profile.paths), method="POST" if profile.payload_bytes else "GET", headers=dict(headers),
        body_bytes=profile.payload_bytes, connections=profile.connections, workers=profile.workers,
        request_timeout=profile.request_timeout, workers_timeout=profile.workers_timeout,
        startup_timeout=profile.startup_timeout,
    )  # fmt: skip


def measure_rate(setup: LoadSetup, profile: LoadProfile, rate: float, *, echo: Echo | None = None,
                 progress: Progress | None = None) -> RateResult:
    """Baseline and mesh latency at `rate`, interleaved, analysed: the results entry and its verdicts.

    `echo` says what the app does with each request (default: answer with `payload_bytes` bytes).
    """
    directive = echo if echo is not None else Echo(body_size=profile.payload_bytes or None)
    run = run_plan(build_plan(profile, rate, setup, directive.headers()), setup.proxies, progress=progress)
    return analyse(run, profile)


class _Events:
    """The generator's JSON-lines event file, read as it grows."""

    def __init__(self, path: Path) -> None:
        self._file = path.open()
        self._partial = ""

    def new(self) -> list[dict[str, Any]]:
        text = self._partial + self._file.read()
        *lines, self._partial = text.split("\n")
        return [json.loads(line) for line in lines if line]

    def close(self) -> None:
        self._file.close()


@dataclass
class _Sampler:
    """CPU seconds (user + system) and RSS of named processes, sampled together."""

    pids: dict[str, int]
    samples: dict[str, list[Usage]] = field(default_factory=dict)
    _processes: dict[str, psutil.Process] = field(default_factory=dict)

    def sample(self) -> None:
        for name, pid in self.pids.items():
            try:
                process = self._processes.setdefault(name, psutil.Process(pid))
                with process.oneshot():
                    cpu, rss = process.cpu_times(), process.memory_info().rss
            except psutil.Error:  # gone: a crashed proxy shows as errors in the blocks, not here
                continue
            self.samples.setdefault(name, []).append(Usage(time.monotonic(), cpu.user + cpu.system, rss))

    def of(self, names: list[str]) -> dict[str, tuple[Usage, ...]]:
        return {name: tuple(self.samples.get(name, ())) for name in names}


def _progress_text(plan: Plan, elapsed: float) -> str:
    current = next((block for block in plan.blocks if block.start <= elapsed < block.end), plan.blocks[-1])
    if current.pair is None:
        return f"warm-up on the {current.target} path at {plan.rate:g} req/s"
    return f"{current.target} block {current.pair + 1}/{plan.pairs} at {plan.rate:g} req/s"


class _Generator:
    """The Locust processes of one run, and what they have reported so far."""

    def __init__(self, plan: Plan, run_dir: RunDir, supervisor: Supervisor) -> None:
        self.plan = plan
        self.run_dir = run_dir
        self.supervisor = supervisor
        plan_path, events_path = run_dir.path / "plan.json", run_dir.path / "events.jsonl"
        plan_path.write_text(plan.to_json())
        events_path.touch()
        self.events = _Events(events_path)
        self.argv = [sys.executable, "-m", "meshproof.load.generator", "--plan", str(plan_path)]
        role = "master" if plan.workers else "local"
        self.children = [self._start(f"locust-{role}", "--role", role, "--out", str(events_path))]
        self.t0: float | None = None
        self.blocks: dict[int, BlockRecord] = {}
        self.locust_stats: dict[str, Any] | None = None  # set by the `done` event

    def _start(self, name: str, *args: str) -> Child:
        return self.supervisor.start(name, [*self.argv, *args], log=self.run_dir.path / f"{name}.log")

    def read(self) -> None:
        """Act on the events written since the last call (see meshproof.load.generator)."""
        for event in self.events.new():
            kind = event.pop("event")
            if kind == "listening":
                self.children += [self._start(f"locust-worker-{i}", "--role", "worker", "--master-port",
                                              str(event["port"])) for i in range(self.plan.workers)]
            elif kind == "started":
                self.t0 = float(event["t0"])
            elif kind == "block":
                record = BlockRecord.from_json(event)
                self.blocks[record.index] = record
            elif kind == "done":
                self.locust_stats = event["locust_stats"]
            else:
                raise self.failure(f"the load generator failed: {event.get('message')}")

    def failure(self, message: str) -> LoadGeneratorError:
        tails = "; ".join(f"{child.name}: {child.log_tail(8)}" for child in self.children)
        return LoadGeneratorError(f"{message} (log tails: {tails})")


class RunningPlan:
    """A plan's Locust processes, running in the background; `poll()` takes in what they reported so far.

    `run_plan` drives one to its end; a chaos experiment keeps one sending for as long as the experiment
    runs and stops it early (meshproof.chaos.traffic). Stopping ends the processes and removes the run
    directory; blocks already reported are kept.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.run_dir = RunDir.create("load")
        self.supervisor = Supervisor(self.run_dir)
        self.started = time.monotonic()
        self.deadline = self.started + plan.startup_timeout + plan.length + plan.request_timeout
        try:
            self.generator = _Generator(plan, self.run_dir, self.supervisor)
        except BaseException:
            self.supervisor.stop_all()
            self.run_dir.remove()
            raise

    def poll(self) -> bool:
        """Read the events written since the last call; True once the generator is done. Raises
        LoadGeneratorError when it failed, exited early, or overran its deadline."""
        generator = self.generator
        ended = generator.children[0].exited() is not None  # checked before reading: its last events count
        generator.read()
        if generator.locust_stats is not None:
            return True
        exits = {child.name: child.exited() for child in generator.children if child.exited() is not None}
        if ended or any(exits.values()):
            raise generator.failure(f"the load generator exited before it finished (exit codes: "
                                    f"{', '.join(f'{name} {code}' for name, code in exits.items())})")
        if time.monotonic() > self.deadline:
            raise generator.failure(f"the load run at {self.plan.rate:g} req/s did not finish within "
                                    f"{self.deadline - self.started:.0f}s")
        return False

    @property
    def t0(self) -> float | None:
        """When the schedule began (CLOCK_MONOTONIC); None until the generator said so."""
        return self.generator.t0

    def blocks(self) -> tuple[BlockRecord, ...]:
        """The blocks reported so far, by index (a block is reported once its last request finished)."""
        return tuple(self.generator.blocks[index] for index in sorted(self.generator.blocks))

    def processes(self) -> dict[str, int]:
        return {child.name: child.popen.pid for child in self.generator.children}

    def stop(self) -> None:
        self.generator.events.close()
        self.supervisor.stop_all()
        self.run_dir.remove()


def run_plan(plan: Plan, proxies: Mapping[str, int], *, progress: Progress | None = None) -> LoadRun:
    """Run `plan` with Locust in its own processes; sample `proxies` (name -> pid) meanwhile."""
    running = RunningPlan(plan)
    try:
        sampler = _Sampler(dict(proxies))
        shown = ""
        while not running.poll():
            sampler.pids.update(running.processes())
            sampler.sample()
            text = "" if running.t0 is None else _progress_text(plan, time.monotonic() - running.t0)
            if progress is not None and text != shown:
                progress(text)
                shown = text
            time.sleep(SAMPLE_INTERVAL)
        sampler.sample()
        assert running.t0 is not None and running.generator.locust_stats is not None
        return LoadRun(plan, running.t0, running.blocks(), sampler.of(list(proxies)),
                       sampler.of(list(running.processes())), running.generator.locust_stats,
                       time.monotonic() - running.started)
    finally:
        running.stop()
