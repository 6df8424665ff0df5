"""A mesh release that drops the resilience intents: the chaos checks' mutant (tests/test_mutation_chaos.py).

Apart from tests/mutants.py (the other capabilities' mutants) so each file stays about one thing.
"""

from __future__ import annotations

from typing import Any

from tests.mutants import _dicts

Config = dict[str, Any]


def resilience_ignored(workload: str, config: Config) -> Config:
    """Routes lose their retry policy and clusters their outlier detection, whatever the intents say; the route
    timeout stays, so only the resilience is gone."""
    for node in _dicts(config):
        node.pop("retry_policy", None)
        node.pop("outlier_detection", None)
    return config
