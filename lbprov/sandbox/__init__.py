"""Local stand-ins for the outside world: the sandbox Kubernetes API server (``kube_api``)."""
