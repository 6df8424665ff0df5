"""meshproof.chaos.analysis on made-up journals and load series: phases, the fault's window, recovery, the schema."""

from datetime import UTC, datetime
from typing import Any

import pytest

from meshproof.chaos.analysis import analyse, recovery
from meshproof.chaos.traffic import Series
from meshproof.load.blocks import BlockRecord, encode, new_histogram, record
from meshproof.load.schedule import Plan, Target, series
from meshproof.profile import ChaosProfile
from meshproof.results import SCHEMA, schema_errors

PROFILE = ChaosProfile()  # 0.25 s blocks, 2 s probe window, limits 1% and 100 ms
T0 = 1_700_000_000.0
LENGTH = 12.0


def _plan() -> Plan:
    return Plan(rate=200.0, arrival="constant", seed=0, blocks=series("mesh", block_length=0.25, until=LENGTH),
                targets={"mesh": Target("http://127.0.0.1:1", "order-service.default")}, paths=("/",),
                method="GET", headers={}, body_bytes=0, connections=8, workers=0, request_timeout=10.0,
                workers_timeout=10.0, startup_timeout=10.0)


def _block(index: int, start: float, *, errors: int = 0, latency_ms: float = 2.0) -> BlockRecord:
    latency, lag = new_histogram(), new_histogram()
    for _ in range(50 - errors):
        record(latency, latency_ms / 1000)
    for _ in range(50):
        record(lag, 0.0001)
    return BlockRecord(index, requests=50, ok=50 - errors, errors={"HTTP 503": errors} if errors else {},
                       last_done=start + 0.25 + latency_ms / 1000, latency=encode(latency), lag=encode(lag))


def _series(bad: dict[int, dict[str, float]]) -> Series:
    """Every block healthy except `bad` (index -> errors / latency_ms)."""
    plan = _plan()
    found = Series(plan, T0, stopped_s=LENGTH)
    for block in plan.blocks:
        found.records[block.index] = _block(block.index, block.start, **bad.get(block.index, {}))  # type: ignore[arg-type]
    return found


def _at(seconds: float) -> str:
    return datetime.fromtimestamp(T0 + seconds, UTC).isoformat()


def _run(func: str, start: float, end: float, output: dict[str, Any]) -> dict[str, Any]:
    return {"activity": {"name": func, "type": "action",
                         "provider": {"type": "python", "module": "meshproof.chaos.actions", "func": func}},
            "output": output, "status": "succeeded", "start": _at(start), "end": _at(end)}


def _journal(*runs: dict[str, Any], rollbacks: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {"experiment": {"title": "t"}, "status": "completed", "deviated": False, "run": list(runs),
            "rollbacks": list(rollbacks), "steady_states": {"before": {"steady_state_met": True, "probes": []}}}


KILL = {"fault": {"type": "AppCrash", "fields": {}}, "instances": ["order-service-v1-0"], "lasts_s": None}


def _kill_journal() -> dict[str, Any]:
    return _journal(_run("apply_intents", 1.0, 1.1, {}), _run("kill_app", 3.0, 3.05, KILL),
                    _run("restart_app", 7.0, 7.4, {"undone": ["order-service-v1-0"]}),
                    rollbacks=(_run("restart_app", 10.0, 10.01, {"undone": []}),
                               _run("restore_baseline", 10.02, 10.1, {})))


def test_phases_follow_the_journal_and_transitions_belong_to_no_phase() -> None:
    bad = {i: {"errors": 25} for i in range(12, 30)}  # 3.0 s .. 7.5 s: errors linger past the undo
    entry = analyse(_kill_journal(), _series(bad), PROFILE, name="kill-v1-app", recovery_from="end")
    assert entry["fault"] == {"kind": "kill_app", "target": "order-service-v1-0", "start_s": 3.0, "end_s": 7.4,
                              "in_force_s": [3.05, 7.0], "ends_by": "undo"}
    before, during, after = (entry["phases"][p] for p in ("before", "during", "after"))
    # before: blocks from the set-up's end (1.1 s) whose requests all finished before 3.0 s: 1.25 .. 2.5
    assert (before["start_s"], before["end_s"], before["requests"], before["errors"]) == (1.25, 2.75, 300, 0)
    # during: wholly within 3.05 .. 7.0 s, so 3.25 .. 7.0
    assert (during["start_s"], during["end_s"], during["errors"]) == (3.25, 7.0, 375)
    assert during["error_rate"] == 0.5 and during["ci"][0] < 0.5 < during["ci"][1]
    # after: from the undo's end (7.4 s) to the tear-down's start (10.02 s)
    assert (after["start_s"], after["end_s"], after["errors"]) == (7.5, 10.0, 0)
    assert entry["metrics"]["error_rate_during_fault"]["value"] == 0.5
    assert entry["recovery"]["s"] == 0.1 and entry["recovery"]["from"] == "end"  # first clean block starts 7.5


def test_recovery_from_the_start_is_zero_for_a_fault_that_never_shows() -> None:
    entry = analyse(_kill_journal(), _series({}), PROFILE, name="kill-v1-app", recovery_from="start")
    assert entry["recovery"]["s"] == 0.0 and entry["phases"]["during"]["errors"] == 0


def test_a_late_stall_of_the_machine_does_not_undo_a_recovery() -> None:
    blocks = _series({30: {"errors": 5}, 31: {"latency_ms": 500.0}, 39: {"latency_ms": 300.0}}).reported()
    # from 7.4 s: block 30 (7.5) out, 31 out, then 32..39 would be the first 2 s run, but 39 is out: 40..47
    assert recovery(blocks, 7.4, 12.0, PROFILE) == round(10.0 - 7.4, 3)
    assert recovery(blocks, 7.4, 11.0, PROFILE) is None  # the clean run would end after the horizon


def test_a_fault_that_ends_by_itself_closes_its_window_then() -> None:
    freeze = {**KILL, "fault": {"type": "AppFreeze", "fields": {"seconds": 2.0}}, "lasts_s": 2.0}
    journal = _journal(_run("apply_intents", 1.0, 1.1, {}), _run("freeze_app", 3.0, 3.01, freeze),
                       _run("thaw_app", 7.0, 7.01, {"undone": []}))
    entry = analyse(journal, _series({}), PROFILE, name="freeze-v1-app", recovery_from="end")
    assert entry["fault"]["end_s"] == 5.01 and entry["fault"]["ends_by"] == "itself"
    assert entry["fault"]["in_force_s"] == [3.01, 5.0]


def test_a_journal_without_a_fault_gives_an_entry_without_phases() -> None:
    entry = analyse(_journal(_run("apply_intents", 1.0, 1.1, {})), _series({}), PROFILE, name="x", recovery_from="end")
    assert entry["fault"] is None and entry["phases"] == {} and entry["timeline"]["rows"]


def test_the_entry_matches_the_published_schema() -> None:
    entry = analyse(_kill_journal(), _series({12: {"errors": 50}}), PROFILE, name="kill-v1-app", recovery_from="end")
    results = {"schema": SCHEMA, "run": {"mesh": "local", "mesh_version": None, "backend": None, "profile": "default",
                                         "meshproof_version": "0", "started": "", "duration_s": 0, "host": {},
                                         "interrupted": False, "unsupported_features": {}},
               "checks": [], "load": [], "chaos": [{"check": "chaos.x", **entry, "journal": "j.json"}]}
    assert schema_errors(results) == []
    del results["chaos"][0]["journal"]
    assert schema_errors(results) == ["chaos/0: 'journal' is a required property"]


def test_an_unknown_recovery_reference_is_refused() -> None:
    with pytest.raises(ValueError, match="recovery_from"):
        analyse(_kill_journal(), _series({}), PROFILE, name="x", recovery_from="middle")
