"""`agent-service worker`: execute background runs only (`server.worker`), for a Deployment
of workers apart from the API's pods."""

from __future__ import annotations

import argparse
import sys

from agent_service.commands.common import InvalidSettings, command_settings
from agent_service.server.worker import run_worker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        type=int,
        help="runs this process executes at once (default: RUN_WORKERS, at least 1)",
    )
    parser.epilog = "Settings come from the environment and SECRETS_DIR, as for `serve`."


def run(args: argparse.Namespace) -> int:
    try:
        settings = command_settings()
    except InvalidSettings as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    concurrency = args.concurrency if args.concurrency is not None else settings.run_workers
    if concurrency < 1:
        print("worker: --concurrency (or RUN_WORKERS) must be at least 1", file=sys.stderr)
        return 2
    run_worker(settings.model_copy(update={"run_workers": concurrency}))
    return 0
