"""`python -m tools.local up|down|status|supervise`: what `make up` and `make down` run."""

from __future__ import annotations

import argparse
import json
import os
import sys

from tools.kit.programs import MissingProgram
from tools.local.environment import (
    LocalError,
    down,
    load_ports,
    read_status,
    state_dir,
    supervisor_pid,
    up,
    usage,
)
from tools.local.layout import Ports
from tools.local.rotate import rotate
from tools.local.secrets import ensure_credentials
from tools.local.supervisor import Supervisor


def _ports() -> Ports:
    defaults = Ports()
    return Ports(
        **{
            name: int(os.environ.get(f"LOCAL_{name.upper()}_PORT", getattr(defaults, name)))
            for name in ("agent", "postgres", "redis", "s3")
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local")
    parser.add_argument("command", choices=["up", "down", "status", "supervise", "rotate"])
    parser.add_argument(
        "--state-dir", help="default: .local in the repository (or LOCAL_STATE_DIR)"
    )
    args = parser.parse_args(argv)
    layout = state_dir(args.state_dir)
    try:
        if args.command == "up":
            running = supervisor_pid(layout) is not None
            ports = up(layout, _ports())
            if running:
                print(
                    f"The local environment is already running on http://127.0.0.1:{ports.agent}."
                )
            print(usage(ports))
        elif args.command == "down":
            print(
                "The local environment stopped."
                if down(layout)
                else "The local environment is not running."
            )
        elif args.command == "status":
            print(json.dumps(read_status(layout), indent=2))
        elif args.command == "rotate":
            if supervisor_pid(layout) is None:
                raise LocalError("the local environment is not running: `make up` first")
            for line in rotate(layout, load_ports(layout, _ports())).lines():
                print(line)
        else:
            ports = load_ports(layout, _ports())
            return Supervisor(layout, ports, ensure_credentials(layout.secrets)).run()
    except (LocalError, MissingProgram) as exc:
        print(f"make {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
