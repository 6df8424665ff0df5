"""The Locust side of a load run: `python -m meshproof.load.generator --role ROLE --plan FILE ...`.

Importing locust monkey-patches the interpreter with gevent, so this module only ever runs as its own
program, started by meshproof.load.driver; nothing in meshproof imports it. It follows a
meshproof.load.schedule.Plan with Locust's own machinery: an `Environment`, a runner (`local`: one
process; `master` + `worker`s: Locust's distributed mode, where each worker sends its share of the
schedule and the master merges their reports), and `FastHttpUser`s, one per client connection.

Open model: a dispatcher greenlet per process releases each request of its share at its due time
(woken by a Linux timerfd, see `_Timer`) into a queue; every user takes the next released request
when it is free and sends it. So a slow response delays only requests that find every connection busy,
and that wait counts as latency (meshproof.load.schedule.account). Each finished request is accounted
from Locust's `request` event (its `response_time` is the float milliseconds from send to the end of
the response) into HDR histograms per block; when a block's last request finished, the process sends
that block's part to the master (Locust's custom messages; the local runner delivers them to itself),
which merges the parts and writes the block as a JSON line to `--out`. Events written there:
`listening` (master: its port), `started` (t0 on CLOCK_MONOTONIC, shared by all processes on the
host), `block` (one per block, any order), then `done` (with Locust's own statistics of the same
requests: timed from their actual send, bucketed, what a closed-loop tool would report; a master has
them as of its workers' last report) or `error`.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import gevent
from gevent.event import Event
from gevent.queue import Queue
from gevent.socket import wait_read
from locust import FastHttpUser, constant, task
from locust.env import Environment
from locust.runners import Runner

from meshproof.load.blocks import BlockCollector, BlockRecord, merge
from meshproof.load.schedule import Plan, account, share
from meshproof.workloads.timerfd import TimerFd

START_MESSAGE = "meshproof_start"  # master -> workers: {"t0": seconds on CLOCK_MONOTONIC}
BLOCK_MESSAGE = "meshproof_block"  # workers -> master: one BlockRecord part
START_LEAD = 0.5  # s from the start message to t0: time for it to reach every worker and for users to wait
SLOT = "meshproof_slot"  # the request context key carrying (request number in this process, ready)


def _fatal_on_error(function: Callable[..., Any]) -> Callable[..., Any]:
    """Locust logs and swallows exceptions in event and message handlers, which would leave a block unfinished
    and the run hanging until its deadline; a bug here ends the process at once, its traceback in the log."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception:
            logging.exception("meshproof load generator: internal error in %s", function.__qualname__)
            logging.shutdown()
            os._exit(70)  # EX_SOFTWARE

    return guarded


class _Timer:
    """Sleeps until an absolute time.monotonic() instant: a timerfd the gevent loop waits on, because
    gevent.sleep wakes up to 1 ms late (see meshproof.workloads.timerfd)."""

    def __init__(self) -> None:
        self._timer = TimerFd()

    def wait_until(self, at: float) -> None:
        if at <= time.monotonic():
            return
        self._timer.arm(at)
        wait_read(self._timer.fileno())
        self._timer.consume()


class _Share:
    """This process's part of the schedule: released into `ready` at due times, accounted when finished."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.ready: Queue[int] = Queue()
        self.t0 = 0.0
        self.due: list[float] = []
        self.released: list[float] = []
        self.block: list[int] = []
        self.path: list[str] = []
        self.collector: BlockCollector | None = None

    def start(self, t0: float, worker: int, workers: int, send: Callable[[str, Any], None]) -> None:
        """Take share `worker` of `workers`, report empty blocks with `send`, and release requests from t0."""
        everything = self.plan.arrivals()
        mine = share(everything.size, worker, workers)
        due = everything[mine]
        self.t0, self.due, self.block = t0, due.tolist(), self.plan.block_of(due).tolist()
        self.released = [0.0] * due.size
        self.path = [self.plan.paths[int(i) % len(self.plan.paths)] for i in mine]
        counts = Counter(self.block)
        self.collector = BlockCollector({block.index: counts.get(block.index, 0) for block in self.plan.blocks})
        for record in self.collector.empty():
            send(BLOCK_MESSAGE, record.to_json())
        gevent.spawn(self._dispatch)

    @_fatal_on_error
    def _dispatch(self) -> None:
        timer = _Timer()
        for number, due in enumerate(self.due):
            timer.wait_until(self.t0 + due)
            self.released[number] = time.monotonic()
            self.ready.put(number)

    def finished(self, number: int, ready: float, response_time_ms: float, error: str | None) -> BlockRecord | None:
        assert self.collector is not None
        due = self.t0 + self.due[number]
        latency, lag = account(due=due, released=self.released[number], ready=ready,
                               response_time=response_time_ms / 1000)
        return self.collector.finished(self.block[number], latency=latency, lag=lag, queued=ready > due,
                                       error=error, done=time.monotonic() - self.t0)


def _user_class(plan: Plan, mine: _Share) -> type[FastHttpUser]:
    targets = [plan.targets[block.target] for block in plan.blocks]
    body = "x" * plan.body_bytes or None
    headers = [{**plan.headers, "Host": target.host} for target in targets]

    class ScheduledUser(FastHttpUser):  # one user = one client connection per path
        host = plan.targets[plan.blocks[0].target].url
        network_timeout = connection_timeout = plan.request_timeout
        wait_time = constant(0)

        @task
        def send_when_due(self) -> None:
            ready = time.monotonic()
            number = mine.ready.get()
            block = mine.block[number]
            self.client.request(plan.method, targets[block].url + mine.path[number], headers=headers[block],
                                data=body, context={SLOT: (number, ready)})

    return ScheduledUser


def _error_kind(exception: BaseException, response: Any) -> str:
    status = getattr(response, "status_code", 0)
    return f"HTTP {status}" if status else type(exception).__name__


class _Merger:
    """Master side: merges the parts of each block from every worker and writes the block out."""

    def __init__(self, plan: Plan, workers: int, out: IO[str]) -> None:
        self.workers = workers
        self.out = out
        self.parts: dict[int, list[BlockRecord]] = {}
        self.remaining = len(plan.blocks)
        self.complete = Event()

    @_fatal_on_error
    def receive(self, environment: Environment, msg: Any, **_: Any) -> None:
        part = BlockRecord.from_json(msg.data)
        parts = self.parts.setdefault(part.index, [])
        parts.append(part)
        if len(parts) < self.workers:
            return
        _write(self.out, {"event": "block", **merge(self.parts.pop(part.index)).to_json()})
        self.remaining -= 1
        if self.remaining == 0:
            self.complete.set()


def _write(out: IO[str], event: dict[str, Any]) -> None:
    out.write(json.dumps(event) + "\n")
    out.flush()


def _environment(plan: Plan, mine: _Share) -> Environment:
    environment = Environment(user_classes=[_user_class(plan, mine)])

    @_fatal_on_error
    def on_request(response_time: float, exception: BaseException | None, context: dict[str, Any],
                   response: Any = None, **_: Any) -> None:
        if SLOT not in context:
            return
        number, ready = context[SLOT]
        error = None if exception is None else _error_kind(exception, response)
        record = mine.finished(number, ready, response_time, error)
        if record is not None:
            assert environment.runner is not None
            environment.runner.send_message(BLOCK_MESSAGE, record.to_json())

    hooks: Any = environment.events  # Locust's EventHook.add_listener is unannotated
    hooks.request.add_listener(on_request)
    return environment


def _locust_stats(environment: Environment) -> dict[str, Any]:
    """Locust's own view of the same requests: times from the actual send, in its rounded buckets."""
    total = environment.stats.total
    return {"requests": total.num_requests, "failures": total.num_failures,
            "response_time_ms": {name: total.get_response_time_percentile(q)
                                 for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999))},
            "max_ms": total.max_response_time}


def _drive(runner: Runner, environment: Environment, plan: Plan, merger: _Merger, out: IO[str]) -> None:
    """Start one user per connection, then the schedule; wait until every block is merged."""
    spawned = Event()
    hooks: Any = environment.events
    hooks.spawning_complete.add_listener(lambda user_count, **_: spawned.set())
    runner.start(plan.connections, spawn_rate=plan.connections * 100)
    if not spawned.wait(timeout=plan.workers_timeout):
        raise RuntimeError(f"Locust did not spawn {plan.connections} users within {plan.workers_timeout:g}s")
    t0 = time.monotonic() + START_LEAD
    _write(out, {"event": "started", "t0": t0})
    runner.send_message(START_MESSAGE, {"t0": t0})
    deadline = START_LEAD + plan.length + plan.request_timeout + plan.workers_timeout
    if not merger.complete.wait(timeout=deadline):
        raise RuntimeError(f"blocks still unfinished {deadline:g}s after the start: {sorted(merger.parts)}")
    _write(out, {"event": "done", "locust_stats": _locust_stats(environment)})  # before the workers exit
    runner.quit()


def _listen_for_start(runner: Any, mine: _Share, workers: int) -> None:
    """The local runner and each worker start their share on the start message (the local runner sends it to
    itself); `worker_index` is 0 for the local runner and assigned by the master to each worker."""

    @_fatal_on_error
    def start(environment: Environment, msg: Any, **_: Any) -> None:
        mine.start(float(msg.data["t0"]), runner.worker_index, workers, runner.send_message)

    runner.register_message(START_MESSAGE, start)


def _wait_for_workers(runner: Any, workers: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while runner.worker_count < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{runner.worker_count} of {workers} Locust workers connected within "
                               f"{timeout:g}s")
        gevent.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="meshproof.load.generator", description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("local", "master", "worker"), required=True)
    parser.add_argument("--plan", type=Path, required=True)
    parser.add_argument("--out", type=Path, help="where the local runner or the master writes its events")
    parser.add_argument("--master-port", type=int, help="worker: the master's port on 127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    plan = Plan.from_json(args.plan.read_text())
    mine = _Share(plan)
    environment = _environment(plan, mine)
    if args.role == "worker":
        worker = environment.create_worker_runner("127.0.0.1", args.master_port)
        _listen_for_start(worker, mine, plan.workers)
        worker.greenlet.join()  # until the master quits it
        return
    with open(args.out, "a") as out:
        try:
            if args.role == "local":
                runner: Runner = environment.create_local_runner()
                _listen_for_start(runner, mine, 1)
                merger = _Merger(plan, 1, out)
            else:
                runner = environment.create_master_runner("127.0.0.1", 0)
                _write(out, {"event": "listening", "port": runner.server.port})
                merger = _Merger(plan, plan.workers, out)
                _wait_for_workers(runner, plan.workers, plan.workers_timeout)
            runner.register_message(BLOCK_MESSAGE, merger.receive)
            _drive(runner, environment, plan, merger, out)
        except Exception as exc:
            _write(out, {"event": "error", "message": f"{type(exc).__name__}: {exc}"})
            raise


if __name__ == "__main__":
    main()
