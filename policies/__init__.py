"""The CrossGuard policy pack that reviews every `pulumi preview` and `make plan`.

Rules live in one module per concern and are collected in `policies.registry.ALL_POLICIES`;
`policies.evaluate` runs them offline over recorded resources. Only `__main__.py` may build
the `PolicyPack`: constructing one starts the analyzer's gRPC server and never returns.
"""
