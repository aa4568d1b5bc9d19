"""What `pulumi preview --policy-pack policies` runs: build the pack and serve it.

The rules live in their own modules; this file only constructs the `PolicyPack`, which starts
the analyzer's gRPC server and never returns (so nothing may import this module).
"""

import sys
from pathlib import Path

# The CLI runs this directory as a script, which puts the pack directory first on sys.path.
# The rules import each other as the `policies` package, and a module here such as
# `kubernetes.py` must not shadow an installed package: serve from the repository root.
_PACK_DIR = Path(__file__).resolve().parent
sys.path[:] = [str(_PACK_DIR.parent)] + [
    entry for entry in sys.path if Path(entry or ".").resolve() != _PACK_DIR
]

from pulumi_policy import PolicyPack  # noqa: E402

from policies.registry import ALL_POLICIES, PACK_ENFORCEMENT_LEVEL, PACK_NAME  # noqa: E402

PolicyPack(name=PACK_NAME, policies=ALL_POLICIES, enforcement_level=PACK_ENFORCEMENT_LEVEL)
