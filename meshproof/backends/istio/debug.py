"""What istiod's debug API says, read the same way wherever istiod runs (here, or on a cluster through a
port-forward): `/debug/syncz`, per proxy, what it sent and what each proxy acknowledged or refused;
`/debug/configz`, every config istiod holds, at its resourceVersion. Parsing only, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProxySync:
    """One proxy's row of istiod's /debug/syncz: per xDS type, the nonce sent and the nonce acknowledged."""

    proxy: str
    sent: Mapping[str, str]
    acked: Mapping[str, str]
    errors: Mapping[str, str]

    @property
    def in_sync(self) -> bool:
        return all(self.acked.get(kind) == nonce for kind, nonce in self.sent.items() if nonce)


def parse_syncz(rows: Sequence[Mapping[str, Any]]) -> dict[str, ProxySync]:
    """/debug/syncz (istiod 1.30/1.31: each row's `resources` maps a type URL to sent/acked/lastError)."""
    found = {}
    for row in rows:
        resources = row.get("resources") or {}
        found[str(row["proxy"])] = ProxySync(
            str(row["proxy"]), sent={kind: str(state.get("sent", "")) for kind, state in resources.items()},
            acked={kind: str(state.get("acked", "")) for kind, state in resources.items()},
            errors={kind: str(state["lastError"]) for kind, state in resources.items() if state.get("lastError")})
    return found


def parse_configz(items: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, str], str]:
    """/debug/configz: (kind, namespace, name) -> resourceVersion of every config istiod holds."""
    return {(str(item.get("kind")), str(item["metadata"].get("namespace", "")), str(item["metadata"]["name"])):
            str(item["metadata"].get("resourceVersion", "")) for item in items if "metadata" in item}
