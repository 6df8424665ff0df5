"""One package per mesh backend; they never import each other (import-linter). `host/` is what runs
workloads and proxies on this machine, `kube/` the shared Kubernetes layer. meshproof.registry lists them."""
