"""The service's own tables (thread ownership, runs, audit log), next to LangGraph's.

`migrate` creates them; the server only checks that they are there. Every statement is
idempotent so a re-run of the migration Job is harmless. Bump SCHEMA_VERSION with each new
migration and append it to both lists.
"""

from __future__ import annotations

SCHEMA_VERSION = 6

# What `agent_require_thread_owner` (migration 6) fails with: a run's checkpoint write found
# its thread deleted or someone else's (persistence.guard turns it into ThreadGone).
THREAD_GONE_SQLSTATE = "AS001"

# Tables the server needs; /ready reports any that is missing as "schema not migrated".
SERVICE_TABLES = (
    "agent_threads",
    "agent_runs",
    "agent_audit_log",
    "agent_schema_version",
    "agent_run_queue",
    "agent_run_cancels",
    "agent_assistants",
    "agent_assistant_versions",
    "agent_crons",
)
# Functions the server calls, as `to_regprocedure` reads them; /ready reports a missing one as
# it reports a missing table. A schema can have every table and still predate one (a backup
# taken before migration 6 restored, the migration Job not run): every run would then fail at
# its first checkpoint write while the pod reads ready.
SERVICE_FUNCTIONS = ("agent_require_thread_owner(text, text)",)
# Tables LangGraph's own setup() creates (checkpointer and store).
LANGGRAPH_TABLES = ("checkpoint_migrations", "checkpoints", "store_migrations", "store")
# The tables LangGraph's checkpointers keep a thread's history in, by backend (each has a
# `thread_id` column): langgraph-checkpoint-postgres and langgraph-checkpoint-sqlite.
CHECKPOINT_TABLES_POSTGRES = ("checkpoint_writes", "checkpoint_blobs", "checkpoints")
CHECKPOINT_TABLES_SQLITE = ("writes", "checkpoints")

# The version table exists before any migration runs, so each one records itself.
POSTGRES_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS agent_schema_version (
        version INTEGER PRIMARY KEY,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )
"""
SQLITE_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS agent_schema_version (
        version INTEGER PRIMARY KEY,
        applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )
"""

POSTGRES_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS agent_threads (
        thread_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        graph_id TEXT,
        metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
        status TEXT NOT NULL DEFAULT 'idle',
        active_run_id TEXT,
        lease_expires_at TIMESTAMPTZ,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX IF NOT EXISTS agent_threads_owner_updated
        ON agent_threads (owner, updated_at DESC);
    CREATE INDEX IF NOT EXISTS agent_threads_updated ON agent_threads (updated_at);
    CREATE TABLE IF NOT EXISTS agent_runs (
        run_id TEXT PRIMARY KEY,
        thread_id TEXT REFERENCES agent_threads (thread_id) ON DELETE CASCADE,
        owner TEXT NOT NULL,
        assistant_id TEXT NOT NULL,
        graph_id TEXT NOT NULL,
        status TEXT NOT NULL,
        metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
        multitask_strategy TEXT NOT NULL,
        error TEXT,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX IF NOT EXISTS agent_runs_owner ON agent_runs (owner);
    CREATE INDEX IF NOT EXISTS agent_runs_thread ON agent_runs (thread_id);
    CREATE TABLE IF NOT EXISTS agent_audit_log (
        id BIGSERIAL PRIMARY KEY,
        at TIMESTAMPTZ NOT NULL DEFAULT now(),
        principal TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail JSONB NOT NULL DEFAULT '{}'::jsonb
    );
    CREATE INDEX IF NOT EXISTS agent_audit_log_subject ON agent_audit_log (subject, at);
    """,
    # 2: background runs. A queued run's request (kwargs) waits in agent_run_queue until a
    # worker claims it; its lease is its thread's lease (agent_threads.lease_expires_at).
    # agent_run_cancels carries a cancel request to whichever process executes the run.
    """
    CREATE TABLE IF NOT EXISTS agent_run_queue (
        run_id TEXT PRIMARY KEY REFERENCES agent_runs (run_id) ON DELETE CASCADE,
        thread_id TEXT NOT NULL,
        kwargs JSONB NOT NULL,
        stateless BOOLEAN NOT NULL DEFAULT false,
        run_after TIMESTAMPTZ NOT NULL DEFAULT now(),
        attempts INTEGER NOT NULL DEFAULT 0,
        worker TEXT,
        output JSONB
    );
    CREATE INDEX IF NOT EXISTS agent_run_queue_after ON agent_run_queue (run_after);
    CREATE INDEX IF NOT EXISTS agent_run_queue_thread ON agent_run_queue (thread_id);
    CREATE INDEX IF NOT EXISTS agent_runs_status ON agent_runs (status);
    CREATE TABLE IF NOT EXISTS agent_run_cancels (
        run_id TEXT PRIMARY KEY REFERENCES agent_runs (run_id) ON DELETE CASCADE,
        action TEXT NOT NULL,
        requested_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    """,
    # 3: a thread's time-to-live (threads.create/update `ttl`, swept by `retention`) and the
    # assistants principals create (the built-in ones, one per graph, are not stored).
    """
    ALTER TABLE agent_threads ADD COLUMN IF NOT EXISTS ttl_minutes DOUBLE PRECISION;
    CREATE INDEX IF NOT EXISTS agent_threads_ttl ON agent_threads (updated_at)
        WHERE ttl_minutes IS NOT NULL;
    CREATE TABLE IF NOT EXISTS agent_assistants (
        assistant_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX IF NOT EXISTS agent_assistants_owner ON agent_assistants (owner);
    CREATE TABLE IF NOT EXISTS agent_assistant_versions (
        assistant_id TEXT NOT NULL REFERENCES agent_assistants (assistant_id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        graph_id TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        config JSONB NOT NULL DEFAULT '{}'::jsonb,
        context JSONB NOT NULL DEFAULT '{}'::jsonb,
        metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (assistant_id, version)
    );
    """,
    # 4: the Store API (issue 19).
    """
    -- Issue 19: main_agent's memories moved from ("memories", <user>) into the user's own store
    -- space ("users", <user>, "memories"), which the Store API shows the user. Copied, not
    -- moved: the previous release reads the old rows through a canary and after a rollback
    -- (expand only); a later release deletes them. `migrate` then embeds the copies.
    INSERT INTO store (prefix, key, value, created_at, updated_at, expires_at, ttl_minutes)
    SELECT 'users.' || substr(prefix, 10) || '.memories', key, value, created_at, updated_at,
        expires_at, ttl_minutes
    FROM store
    WHERE prefix LIKE 'memories.%' AND strpos(substr(prefix, 10), '.') = 0
    ON CONFLICT DO NOTHING
    """,
    # 5: crons (api/crons.py): each belongs to one principal; a thread's crons go with the thread.
    # `next_run_at` is NULL when the cron will not fire again (disabled or past end_time); the
    # scheduler claims a firing by moving it forward with one conditional UPDATE.
    """
    CREATE TABLE IF NOT EXISTS agent_crons (
        cron_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        assistant_id TEXT NOT NULL,
        graph_id TEXT NOT NULL,
        thread_id TEXT REFERENCES agent_threads (thread_id) ON DELETE CASCADE,
        schedule TEXT NOT NULL,
        timezone TEXT,
        payload JSONB NOT NULL DEFAULT '{}'::jsonb,
        metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
        on_run_completed TEXT,
        enabled BOOLEAN NOT NULL DEFAULT true,
        end_time TIMESTAMPTZ,
        next_run_at TIMESTAMPTZ,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX IF NOT EXISTS agent_crons_owner_created ON agent_crons (owner, created_at);
    CREATE INDEX IF NOT EXISTS agent_crons_due ON agent_crons (next_run_at)
        WHERE next_run_at IS NOT NULL;
    CREATE INDEX IF NOT EXISTS agent_crons_thread ON agent_crons (thread_id);
    """,
    # 6: the checkpoint writers' owner check (persistence.guard) as a statement that fails
    # instead of a row to read: a superstep's transaction then goes to the server in one
    # pipelined round trip, aborted by its first statement when the thread is gone or is no
    # longer the run's user's. The SQLSTATE is the service's own (class "AS" is not one of
    # PostgreSQL's, https://www.postgresql.org/docs/15/errcodes-appendix.html), so no other
    # error is mistaken for it.
    """
    CREATE OR REPLACE FUNCTION agent_require_thread_owner(p_thread_id TEXT, p_owner TEXT)
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (
            SELECT 1 FROM agent_threads WHERE thread_id = p_thread_id AND owner = p_owner
        ) THEN
            RAISE EXCEPTION 'the run''s thread was deleted or belongs to another principal'
                USING ERRCODE = '{thread_gone}';
        END IF;
    END
    $$;
    """.replace("{thread_gone}", THREAD_GONE_SQLSTATE),
)

SQLITE_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS agent_threads (
        thread_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        graph_id TEXT,
        metadata TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'idle',
        active_run_id TEXT,
        lease_expires_at REAL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS agent_threads_owner_updated
        ON agent_threads (owner, updated_at DESC);
    CREATE TABLE IF NOT EXISTS agent_runs (
        run_id TEXT PRIMARY KEY,
        thread_id TEXT REFERENCES agent_threads (thread_id) ON DELETE CASCADE,
        owner TEXT NOT NULL,
        assistant_id TEXT NOT NULL,
        graph_id TEXT NOT NULL,
        status TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        multitask_strategy TEXT NOT NULL,
        error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS agent_runs_owner ON agent_runs (owner);
    CREATE INDEX IF NOT EXISTS agent_runs_thread ON agent_runs (thread_id);
    CREATE TABLE IF NOT EXISTS agent_audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        principal TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX IF NOT EXISTS agent_audit_log_subject ON agent_audit_log (subject, at);
    """,
    """
    CREATE TABLE IF NOT EXISTS agent_run_queue (
        run_id TEXT PRIMARY KEY REFERENCES agent_runs (run_id) ON DELETE CASCADE,
        thread_id TEXT NOT NULL,
        kwargs TEXT NOT NULL,
        stateless INTEGER NOT NULL DEFAULT 0,
        run_after REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        worker TEXT,
        output TEXT
    );
    CREATE INDEX IF NOT EXISTS agent_run_queue_after ON agent_run_queue (run_after);
    CREATE INDEX IF NOT EXISTS agent_run_queue_thread ON agent_run_queue (thread_id);
    CREATE INDEX IF NOT EXISTS agent_runs_status ON agent_runs (status);
    CREATE TABLE IF NOT EXISTS agent_run_cancels (
        run_id TEXT PRIMARY KEY REFERENCES agent_runs (run_id) ON DELETE CASCADE,
        action TEXT NOT NULL,
        requested_at REAL NOT NULL
    );
    """,
    """
    ALTER TABLE agent_threads ADD COLUMN ttl_minutes REAL;
    CREATE TABLE IF NOT EXISTS agent_assistants (
        assistant_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS agent_assistants_owner ON agent_assistants (owner);
    CREATE TABLE IF NOT EXISTS agent_assistant_versions (
        assistant_id TEXT NOT NULL REFERENCES agent_assistants (assistant_id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        graph_id TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        config TEXT NOT NULL DEFAULT '{}',
        context TEXT NOT NULL DEFAULT '{}',
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        PRIMARY KEY (assistant_id, version)
    );
    """,
    """
    -- Issue 19: the user's memories copied into the user's own store space (see PostgreSQL).
    INSERT INTO store (prefix, key, value, created_at, updated_at, expires_at, ttl_minutes)
    SELECT 'users.' || substr(prefix, 10) || '.memories', key, value, created_at, updated_at,
        expires_at, ttl_minutes
    FROM store
    WHERE prefix LIKE 'memories.%' AND instr(substr(prefix, 10), '.') = 0
    ON CONFLICT DO NOTHING;
    """,
    # Times are ISO 8601 text in UTC with microseconds ("2026-01-01T00:00:00.000000+00:00"),
    # so that text order is time order.
    """
    CREATE TABLE IF NOT EXISTS agent_crons (
        cron_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        assistant_id TEXT NOT NULL,
        graph_id TEXT NOT NULL,
        thread_id TEXT REFERENCES agent_threads (thread_id) ON DELETE CASCADE,
        schedule TEXT NOT NULL,
        timezone TEXT,
        payload TEXT NOT NULL DEFAULT '{}',
        metadata TEXT NOT NULL DEFAULT '{}',
        on_run_completed TEXT,
        enabled INTEGER NOT NULL DEFAULT 1,
        end_time TEXT,
        next_run_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS agent_crons_owner_created ON agent_crons (owner, created_at);
    CREATE INDEX IF NOT EXISTS agent_crons_due ON agent_crons (next_run_at);
    CREATE INDEX IF NOT EXISTS agent_crons_thread ON agent_crons (thread_id);
    """,
    """
    -- 6: nothing on SQLite: its saver checks the owner with a read under its one lock.
    """,
)

assert len(POSTGRES_MIGRATIONS) == len(SQLITE_MIGRATIONS) == SCHEMA_VERSION
