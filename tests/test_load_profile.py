"""Load profiles load strictly: the shipped ones are valid, every mistake is one line naming the file and key."""

from pathlib import Path

import pytest

from meshproof.errors import UserError
from meshproof.load.profile import LOADPROFILES_DIR, LoadProfile, load_load_profile


def test_the_default_load_profile_file_holds_exactly_the_defaults() -> None:
    assert load_load_profile("default") == LoadProfile()


@pytest.mark.parametrize("name", sorted(path.stem for path in LOADPROFILES_DIR.glob("*.yaml")))
def test_every_shipped_load_profile_is_valid(name: str) -> None:
    assert load_load_profile(name).name == name


def test_the_published_grid_has_the_public_benchmarks_rates() -> None:
    assert load_load_profile("published-grid").rates == [20.0, 200.0, 2000.0]


def test_a_path_works_and_durations_read_as_seconds(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("rates: [50]\nduration: 4s\nblocks: 4\nslo: {p50: 800us, p99: 2ms}\narrival: poisson\n")
    profile = load_load_profile(str(path))
    assert (profile.name, profile.rates, profile.duration, profile.block_length()) == ("mine", [50.0], 4.0, 1.0)
    assert profile.slo == pytest.approx({"p50": 0.0008, "p99": 0.002})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rate: [100]\n", r"rate: unknown key; known keys here: arrival, blocks"),
        ("rates: 100\n", r"rates: expected a list of numbers, got 100"),
        ("rates: []\n", r"rates must be positive requests per second, got \[\]"),
        ("rates: [100, -5]\n", r"rates must be positive requests per second"),
        ("rates: [5]\n", r"at 5 req/s a block of 1s holds 5.0 requests; give each block at least 10"),
        ("blocks: 1\n", r"blocks >= 2 \(the bootstrap resamples blocks\)"),
        ("duration: soon\n", r"duration: expected a duration like '300ms' or '3s', got 'soon'"),
        ("arrival: bursty\n", r"arrival must be one of constant, poisson, got 'bursty'"),
        ("paths: [orders]\n", r"paths must be absolute request paths"),
        ("slo: {p95: 3ms}\n", r"slo maps overhead quantiles \(p50, p90, p99, p999\) to positive durations"),
        ("min_achieved: 1.5\n", r"min_achieved and max_generator_cpu are fractions in \(0, 1\]"),
        ("connections: 0\n", r"connections >= 1"),
        ("workers: 3\nconnections: 2\n", r"3 workers share 2 connections"),
    ],
)
def test_a_bad_load_profile_is_one_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=expected) as raised:
        load_load_profile(str(path))
    message = str(raised.value)
    assert message.startswith(f"load profile {path}") and "\n" not in message


def test_a_missing_load_profile_names_the_shipped_ones() -> None:
    with pytest.raises(UserError, match=r"load profile 'nosuch': cannot read .*nosuch\.yaml: No such file or "
                                        r"directory \(give a YAML file or one of: default, published-grid, smoke\)"):
        load_load_profile("nosuch")
