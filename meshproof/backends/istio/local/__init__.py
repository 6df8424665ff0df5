"""Istio on this host, no cluster: istiod against a local API server, pilot-agent + Envoy per instance.

mesh.py is the Backend; istiod.py and agent.py run Istio's two programs as upstream ships them;
registration.py says how the scenario's instances become Istio workloads; propagation.py when a
change is served; netns.py the private network namespace it all runs in; releases.py which istiod
builds there are (`--mesh-version`); doctor.py what the machine needs.
"""
