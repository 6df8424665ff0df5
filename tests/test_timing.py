"""The timing window: stated before the measurement, never widened by noise; a noisy machine is invalid,
and one noisy sample gets a second look."""

import pytest

from meshproof.checks import Check, CheckInvalid
from meshproof.profile import TimingProfile
from meshproof.results import CheckRecord
from meshproof.timing import Noise

TIMING = TimingProfile()  # tolerance at 0.5 s: 10 ms + 5% = 35 ms; noise fits below 35 / 3 ms


def _check() -> Check:
    return Check(CheckRecord("timeouts.example", "timeouts", "example"))


def test_the_window_is_the_stated_tolerance_whatever_the_noise() -> None:
    window = Noise(0.002, 0.011, 200).window(_check(), 0.5, TIMING, extra_late=0.025)
    assert (round(window.low, 4), round(window.high, 4)) == (0.465, 0.56)
    assert not window.contains(0.5 * 1.2) and not window.contains(0.5 * 0.8)  # a 20% change is outside


def test_a_noisy_first_sample_gets_one_second_look() -> None:
    looks = []

    def again() -> Noise:
        looks.append(1)
        return Noise(0.002, 0.004, 200)

    check = _check()
    window = Noise(0.002, 0.0183, 200, again=again).window(check, 0.5, TIMING)
    assert looks == [1] and window.contains(0.5)
    assert check.record.measured["tolerance"]["noise_allowance_ms"] == 12.0


def test_noisy_twice_is_invalid_and_says_so() -> None:
    noisy = Noise(0.002, 0.0183, 200, again=lambda: Noise(0.002, 0.02, 200))
    with pytest.raises(CheckInvalid, match=r"too noisy to judge: twice, 200 fast calls .* up to 20\.0 ms"):
        noisy.window(_check(), 0.5, TIMING)
    with pytest.raises(CheckInvalid, match=r"too noisy to judge: 200 fast calls on this path had p99\.9 18\.3 ms"):
        Noise(0.002, 0.0183, 200).window(_check(), 0.5, TIMING)
