"""Profiles load strictly: every mistake is one error naming the file, the key and the fix."""

from pathlib import Path

import pytest

from meshproof.errors import UserError
from meshproof.profile import Profile, load_profile


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return str(path)


def test_no_profile_is_the_default_profile() -> None:
    assert load_profile(None) == Profile()


def test_a_shipped_profile_is_found_by_name() -> None:
    assert load_profile("seed").name == "seed"


def test_values_override_defaults_and_durations_read_as_seconds(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, "timeouts:\n  apply: 1500ms\nlocal:\n  sidecar_concurrency: 2\n"))
    assert profile.timeouts.apply == 1.5
    assert profile.timeouts.call == Profile().timeouts.call
    assert profile.local.sidecar_concurrency == 2
    assert profile.name == "profile"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("timeouts:\n  apply: [1\n", r"line \d+ column \d+: not valid YAML: expected .,. or .\]."),
        ("timeouts:\n  aply: 1s\n", r"timeouts\.aply: unknown key; known keys here: admin, apply, batch_floor_rate"),
        ("local:\n  sidecar_concurrency: two\n", r"local\.sidecar_concurrency: expected an integer, got 'two'"),
        ("local:\n  sidecar_concurrency: true\n", r"expected an integer, got True"),
        ("timeouts:\n  apply: soon\n", r"timeouts\.apply: expected a duration like '300ms' or '3s', got 'soon'"),
        ("canary:\n  weights: {v1: 90, v2: 20}\n", r"canary: route weights must add up to 100, got 110"),
        ("canary:\n  steps: [50, 25]\n", r"canary: steps must be increasing percentages"),
        ("- just\n- a list\n", r"expected a mapping of Profile settings"),
    ],
)
def test_a_bad_profile_is_one_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserError, match=expected) as raised:
        load_profile(path)
    message = str(raised.value)
    assert message.startswith(f"profile {path}")
    assert "\n" not in message


def test_an_unreadable_profile_names_the_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"cannot read .*missing\.yaml: No such file or directory \(give a YAML file "
                                        r"or one of: .*seed"):
        load_profile(str(tmp_path / "missing.yaml"))
