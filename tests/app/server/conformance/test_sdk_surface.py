"""The SDK's whole async surface is either driven by a conformance test or named unsupported."""

from __future__ import annotations

import importlib
import pkgutil

from langgraph_sdk.client import (
    AssistantsClient,
    CronClient,
    RunsClient,
    StoreClient,
    ThreadsClient,
)

import tests.app.server as server_tests
from tests.app.server.conformance.sdk_calls import COVERED, UNSUPPORTED

SUB_CLIENTS = {
    "assistants": AssistantsClient,
    "threads": ThreadsClient,
    "runs": RunsClient,
    "store": StoreClient,
    "crons": CronClient,
}


def sdk_calls() -> set[str]:
    return {
        f"{prefix}.{name}"
        for prefix, client in SUB_CLIENTS.items()
        for name in dir(client)
        if not name.startswith("_") and callable(getattr(client, name))
    }


def _import_every_test_module() -> None:
    for module in pkgutil.walk_packages(server_tests.__path__, f"{server_tests.__name__}."):
        if module.name.rsplit(".", 1)[-1].startswith("test_"):
            importlib.import_module(module.name)


def test_every_sdk_call_is_covered_or_stated_unsupported() -> None:
    _import_every_test_module()
    calls = sdk_calls()
    assert len(calls) >= 40, sorted(calls)  # the SDK's surface, not an empty introspection
    missing = sorted(calls - set(COVERED) - set(UNSUPPORTED))
    assert not missing, f"SDK calls neither covered nor stated unsupported: {missing}"
    both = sorted(set(COVERED) & set(UNSUPPORTED))
    assert not both, f"covered yet still listed unsupported: {both}"
    unknown = sorted((set(COVERED) | set(UNSUPPORTED)) - calls)
    assert not unknown, f"not calls of this SDK version: {unknown}"
    print(f"SDK calls covered: {len(COVERED)}/{len(calls)}")
