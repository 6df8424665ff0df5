"""A mesh that outlives the command that started it, and other processes that attach to it.

`meshproof up` starts a daemon (daemon.py) that owns the mesh: it brings the backend up, serves the
backend contract to other processes over a loopback control API, and tears everything down on
SIGTERM (`meshproof down`). Its state file (state.py) says where it is; `connect()` (remote.py) gives
any process, e.g. Chaos Toolkit's `chaos run`, a Backend that talks to it.
"""
