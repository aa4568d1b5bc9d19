"""`agent-service <command>`: the one entrypoint of the image.

Each command lives in its own module of `agent_service.commands` exposing
`add_arguments(parser)` and `run(args) -> int`; modules are imported only for the command that
runs, so a backup Job never imports the web stack and `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("agent_service.commands.serve", "run the HTTP server"),
    "migrate": ("agent_service.commands.migrate", "create or upgrade the database schema"),
    "backup": ("agent_service.commands.backup", "stream pg_dump to S3"),
    "restore": ("agent_service.commands.restore", "restore a backup from S3 into a database"),
    "retention": ("agent_service.commands.retention", "delete threads past the retention horizon"),
    "worker": ("agent_service.commands.worker", "execute background runs (no HTTP API)"),
}


class CommandModule(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(command: str) -> CommandModule:
    return cast(CommandModule, importlib.import_module(COMMANDS[command][0]))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="agent-service", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    # Parse the command name first, then let only that command's module define its options.
    known, _ = parser.parse_known_args(argv[:1] or ["--help"])
    module = _load(known.command)
    command_parser = argparse.ArgumentParser(
        prog=f"agent-service {known.command}", description=COMMANDS[known.command][1]
    )
    module.add_arguments(command_parser)
    return module.run(command_parser.parse_args(argv[1:]))


if __name__ == "__main__":
    raise SystemExit(main())
