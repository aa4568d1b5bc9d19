"""The service's Prometheus metrics: one process-wide object per metric, all named
`agent_service_*`.

The graphs and guardrails update the model, cache and guardrail metrics themselves; the HTTP
server updates the run, rate-limit and pool metrics and exposes the default registry on
`/metrics`. With several uvicorn workers prometheus-client's multiprocess mode sums the
workers' samples: `PROMETHEUS_MULTIPROC_DIR` must be set before this module is first imported
(the serve command does so), and every gauge names how its per-process values combine.

Label values are bounded sets (graph ids, node names, configured model names, fixed status
words): never a user, thread or request id, which would grow the series without bound.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.registry import Collector

# --- runs (updated by the server's run engine) ----------------------------------------------

GRAPH_EXECUTIONS = Counter(
    "agent_service_graph_executions_total",
    "Graph runs finished, by graph and outcome (success, interrupted, error, timeout, cancelled).",
    ["graph", "status"],
)

# Runs last from milliseconds (echo) to minutes (tool loops with a remote model).
RUN_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

RUN_DURATION = Histogram(
    "agent_service_run_duration_seconds",
    "Wall-clock time of one graph run, from start to its last event, by graph.",
    ["graph"],
    buckets=RUN_LATENCY_BUCKETS,
)

ACTIVE_RUNS = Gauge(
    "agent_service_active_runs",
    "Graph runs executing right now, by graph.",
    ["graph"],
    multiprocess_mode="livesum",
)

WEBHOOK_DELIVERIES = Counter(
    "agent_service_webhook_deliveries_total",
    "Run webhooks, by outcome (delivered, refused, redirect_refused, client_error, failed, error).",
    ["outcome"],
)
WEBHOOK_OUTCOMES = ("delivered", "refused", "redirect_refused", "client_error", "failed", "error")
# Present at 0 from the start, so a rate() over them is defined before the first webhook
# (https://prometheus.io/docs/practices/instrumentation/#avoid-missing-metrics).
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOK_DELIVERIES.labels(outcome=_outcome)

# The queue is one table for every replica: each process reads the same number, so the
# processes' values are not summed (`max` of the live ones).
RUN_QUEUE_DEPTH = Gauge(
    "agent_service_run_queue_depth",
    "Background runs that could start now, one per thread (a thread's runs execute one "
    "after another): pending and due, as the database counts them.",
    multiprocess_mode="livemax",
)

CRON_FIRINGS = Counter(
    "agent_service_cron_firings_total",
    "Cron firings claimed by this process, by outcome (submitted; refused: the owner may no "
    "longer use the graph or the payload is no longer valid; failed: not submitted).",
    ["outcome"],
)
for _outcome in ("submitted", "refused", "failed"):
    CRON_FIRINGS.labels(outcome=_outcome)

# --- model (updated by the guardrails' usage accounting) ------------------------------------

MODEL_CALLS = Counter(
    "agent_service_model_calls_total",
    "Chat model calls made by the agents, by configured model.",
    ["model"],
)

MODEL_TOKENS = Counter(
    "agent_service_model_tokens_total",
    "Tokens reported by the model (usage metadata), by configured model and direction "
    "(input, output).",
    ["model", "direction"],
)

MODEL_COST = Counter(
    "agent_service_model_cost_usd_total",
    "Estimated model spend in US dollars from the price table, by configured model; "
    "models without a known price add nothing.",
    ["model"],
)

# --- guardrails ------------------------------------------------------------------------------

GUARDRAIL_EVENTS = Counter(
    "agent_service_guardrail_events_total",
    "Guardrail interventions, by guardrail (pii, prompt_injection, user_model_call_limit, "
    "summarization) and action (redacted, refused, limited, summarized).",
    ["guardrail", "action"],
)

# --- node cache (updated by the graphs' metered cache wrapper) ------------------------------

NODE_CACHE_HITS = Counter(
    "agent_service_node_cache_hits_total",
    "Node cache lookups answered from the cache, by node.",
    ["node"],
)

NODE_CACHE_MISSES = Counter(
    "agent_service_node_cache_misses_total",
    "Node cache lookups that ran the node, by node; a cache backend error counts as a miss.",
    ["node"],
)

# --- research fan-out --------------------------------------------------------------------------

RESEARCH_TASKS = Counter(
    "agent_service_research_tasks_total",
    "Research worker tasks finished, by outcome (success, error).",
    ["status"],
)

# --- HTTP edge (updated by the server) ----------------------------------------------------

# Labelled by the route *template* (`/threads/{thread_id}/runs`), never the raw path: a path
# holds thread ids, and an unmatched path (a scanner's probe) counts as `unmatched`.
HTTP_REQUESTS = Counter(
    "agent_service_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "code"],
)

# Streams count until their last byte: a streamed run's request lasts as long as the run.
HTTP_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

HTTP_REQUEST_DURATION = Histogram(
    "agent_service_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=HTTP_LATENCY_BUCKETS,
)

RATE_LIMIT_REJECTIONS = Counter(
    "agent_service_rate_limit_rejections_total",
    "Requests answered 429 by the per-principal rate limiter, by limiter backend (redis, memory).",
    ["backend"],
)

# --- database pool (updated by the server from psycopg_pool's get_stats()) -----------------

DB_POOL_SIZE = Gauge(
    "agent_service_db_pool_size",
    "Connections the PostgreSQL pool holds (in use and idle), summed over live workers.",
    multiprocess_mode="livesum",
)

DB_POOL_AVAILABLE = Gauge(
    "agent_service_db_pool_available",
    "Idle connections ready in the PostgreSQL pool, summed over live workers.",
    multiprocess_mode="livesum",
)

DB_POOL_MAX = Gauge(
    "agent_service_db_pool_max",
    "Configured upper bound of the PostgreSQL pool, summed over live workers.",
    multiprocess_mode="livesum",
)

DB_POOL_REQUESTS_WAITING = Gauge(
    "agent_service_db_pool_requests_waiting",
    "Requests queued for a PostgreSQL connection, summed over live workers.",
    multiprocess_mode="livesum",
)


# --- exposition ----------------------------------------------------------------------------

_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def forget_dead_workers(directory: Path) -> None:
    """A `live*` gauge must count live workers only, but nothing tells prometheus-client that
    uvicorn replaced a worker: drop the live-gauge files of processes that are gone (the
    library's `mark_process_dead`, which a gunicorn `child_exit` hook would call:
    https://prometheus.github.io/client_python/multiprocess/). Counters and histograms of a
    dead worker stay, so totals never go backwards."""
    pids = {
        int(match.group(1))
        for name in os.listdir(directory)
        if (match := _LIVE_GAUGE_FILE.match(name))
    }
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        except PermissionError:
            continue  # alive, under another user


class _WorkersCollector(Collector):
    """Every worker's samples, merged from the multiprocess directory at each scrape."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._merged = multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
            None, path=str(directory)
        )

    def collect(self) -> Any:
        forget_dead_workers(self._directory)
        return self._merged.collect()  # type: ignore[no-untyped-call]


def workers_registry(directory: Path) -> CollectorRegistry:
    """The registry that serves the merged samples of every worker writing to `directory`."""
    registry = CollectorRegistry()
    registry.register(_WorkersCollector(directory))
    return registry
