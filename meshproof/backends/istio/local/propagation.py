"""When a change to Istio's config is served by every proxy, judged by istiod's and the proxies' own signals.

istiod has no "this change is everywhere" signal (its distribution tracking is gone); `/debug/syncz`
only says whether each proxy acknowledged what istiod last sent it, and right after an apply that is
true of the *old* config: istiod debounces events (100 ms) before it computes and pushes, and skips
proxies and xDS types a change does not touch. So an apply is waited for in three steps:

1. istiod's store has every applied object at the resourceVersion the API server returned, and none
   of the deleted ones (`/debug/configz`);
2. only then the sync marker's VirtualService gets a new token (registration.sync_marker). istiod
   handles events in order and computes each push from its whole store, so a proxy configured from a
   push that includes the token was configured from a store holding step 1's objects too; and the
   marker changes every proxy's outbound route table, so that push reaches every proxy;
3. per proxy: Envoy itself serves the token (its admin config dump), istiod saw every xDS type it sent
   acknowledged (a refused one fails the apply with Envoy's reason), and no listener is still warming
   or draining (a listener change applies to new connections only once the old chains have drained).

istiod sends a push's clusters, endpoints and listeners before its routes, on one stream, and Envoy
handles them in order; so a proxy serving the token's routes has handled the listeners of the same
push: step 3's ack check then sees them acknowledged or refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from meshproof.backends.istio.local.agent import Agent
from meshproof.backends.istio.local.istiod import Istiod
from meshproof.backends.istio.local.registration import SYNC_HEADER, SYNC_PORT
from meshproof.errors import ConfigRejected, UserError
from meshproof.processes import wait_until

ObjectKey = tuple[str, str, str]  # kind, namespace, name
_BUSY = ("listener_manager.total_listeners_warming", "listener_manager.total_listeners_draining",
         "listener_manager.total_filter_chains_draining")


def stored(istiod: Istiod, expected: Mapping[ObjectKey, str | None]) -> list[str]:
    """What istiod's store still lacks of `expected` (resourceVersion, or None for "deleted")."""
    have = istiod.stored_versions()
    return [f"{kind} {namespace}/{name}" for (kind, namespace, name), version in expected.items()
            if have.get((kind, namespace, name)) != version]


def serves_token(agent: Agent, token: str) -> bool:
    """The proxy's outbound route table carries the marker's header with `token`."""
    dump = agent.admin.client.get("/config_dump", params={"resource": "dynamic_route_configs",
                                                          "name_regex": f"^{SYNC_PORT}$"}).text
    return f'"key": "{SYNC_HEADER}",' in dump and f'"value": "{token}"' in dump


def settled(agent: Agent) -> bool:
    stats = agent.admin.stats(*_BUSY)
    return all(stats.get(name, "0") == "0" for name in _BUSY)


def wait_stored(istiod: Istiod, expected: Mapping[ObjectKey, str | None], timeout: float) -> None:
    missing: list[str] = []

    def done() -> bool:
        missing[:] = stored(istiod, expected)
        return not missing

    if not wait_until(done, timeout=timeout, interval=0.01):
        raise UserError(f"istiod did not pick up {', '.join(missing)} within {timeout:g} s "
                        f"(its log: {istiod.child.log})")


def wait_served(istiod: Istiod, agents: Sequence[Agent], token: str, timeout: float,
                on_late: Callable[[list[str]], str] = lambda late: "") -> None:
    """Step 3 for every agent; ConfigRejected when a proxy refused what istiod sent it."""
    waiting = {agent.placement.proxy_id: agent for agent in agents}

    def done() -> bool:
        serving = [proxy for proxy, agent in waiting.items() if serves_token(agent, token)]
        if not serving:
            return not waiting
        syncs = istiod.syncz()
        for proxy in serving:
            sync = syncs.get(proxy)
            if sync is None:
                continue
            if sync.errors:
                kinds = "; ".join(f"{kind.rsplit('.', 1)[-1]}: {error}" for kind, error in sync.errors.items())
                raise ConfigRejected(f"the proxy of {waiting[proxy].placement.name} refused istiod's config: "
                                     f"{kinds[:600]}")
            if sync.in_sync and settled(waiting[proxy]):
                del waiting[proxy]
        return not waiting

    if not wait_until(done, timeout=timeout, interval=0.01):
        late = sorted(waiting)
        raise UserError(f"proxies did not serve the applied config within {timeout:g} s: {', '.join(late)}"
                        f"{on_late(late)} (raise timeouts.apply in the profile if the machine is very slow)")
