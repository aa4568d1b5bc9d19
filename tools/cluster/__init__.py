"""make cluster: a loopback Kubernetes control plane for the chart tests."""
