"""`python -m tools.deploy <stack> [--phase cloud|all] [--image-tag T --image-digest D] [--yes]`
(what `make deploy` runs)."""

import sys

from tools.deploy.run import main

sys.exit(main())
