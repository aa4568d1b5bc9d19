"""Entry point of `pulumi up` (Pulumi.yaml: `main: infra/`)."""

import sys
from pathlib import Path

# Pulumi runs this directory as a script: its parent must be importable (`infra.*`), and the
# directory itself must not be, or `config`, `cache`, `release`... would shadow other modules.
_PROGRAM_DIR = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _PROGRAM_DIR]
if str(_PROGRAM_DIR.parent) not in sys.path:
    sys.path.insert(0, str(_PROGRAM_DIR.parent))

from infra.program import main  # noqa: E402 - after the path is set

main()
