"""What runs workloads on this host, whatever configures their proxies: the SPIFFE CA (ca.py), loopback
port blocks (ports.py), where each instance lives (topology.py), Envoy's process and admin API
(envoy.py), the echo apps (apps.py), and clients outside the mesh (outside_client.py).

The local mesh configures these Envoys from files it renders; a real control plane (istiod, through
pilot-agent) can serve the same Envoys instead. Nothing here imports a backend.
"""
