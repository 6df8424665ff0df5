"""meshproof's Chaos Toolkit extension: faults, probes and the load they run under, for `chaos run chaos/X.json`.

- actions.py: the faults (meshproof.faults) as Chaos Toolkit actions, each next to its undo, and the
  scenario's intents an experiment sets up; probes.py: the live error rate and latency of the load;
- control.py: a Chaos Toolkit control that runs the open-model load for the whole experiment and, at its
  end, writes the measurement (error rates before/during/after the fault, latency, recovery, a time
  series) into the journal; traffic.py: that load; analysis.py: journal + load -> the measurement;
- target.py: how activities reach the mesh (`meshproof up`'s, through meshproof.attach.remote.connect(),
  or the one a suite bound in its own process).

`chaos discover meshproof` lists the activities (discovery.py, reached through `meshproof.discover`).
Not here: the experiments themselves (chaos/*.json) and their verdicts (suites/test_chaos.py).
"""
