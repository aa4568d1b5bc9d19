"""Migrations only expand (docs/canary.md): the migration Job runs before the new pods, and the
previous version keeps serving on the new schema through the canary analysis and after a
rollback. Every statement of every migration must be additive; contracting (drop, rename,
retype, tighten) waits for a later release's migration, and this test then names it."""

from __future__ import annotations

import re

import pytest
from agent_service.persistence.schema import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS

# What an older version's code cannot notice: new tables and indexes, new columns it does not
# write that are nullable or have a default.
_ADDITIVE = (
    re.compile(r"^CREATE TABLE IF NOT EXISTS \w+ \(", re.S),
    re.compile(r"^CREATE (UNIQUE )?INDEX (CONCURRENTLY )?IF NOT EXISTS \w+\s+ON \w+", re.S),
    re.compile(r"^ALTER TABLE \w+ ADD COLUMN (IF NOT EXISTS )?\w+ [^;]*$", re.S),
    re.compile(r"^INSERT INTO \w+ .* ON CONFLICT DO NOTHING$", re.S),
)
_CONTRACTING = re.compile(
    r"\b(DROP|RENAME|TRUNCATE|DELETE\s+FROM|ALTER\s+COLUMN|SET\s+NOT\s+NULL|TYPE\s+\w+)\b"
)


def _statements(migration: str) -> list[str]:
    text = re.sub(r"--[^\n]*", "", migration)
    return [" ".join(s.split()) for s in text.split(";") if s.strip()]


def contracting_statements(migration: str) -> list[str]:
    """The statements of a migration that an older version of the service could trip on."""
    bad = []
    for statement in _statements(migration):
        upper = statement.upper()
        if not any(p.match(upper) for p in _ADDITIVE) or (
            _CONTRACTING.search(upper) and not upper.startswith("CREATE TABLE")
        ):
            bad.append(statement)
        elif upper.startswith("ALTER TABLE") and " NOT NULL" in upper and " DEFAULT " not in upper:
            bad.append(statement)  # an old version's INSERT would leave it NULL and fail
    return bad


@pytest.mark.parametrize(
    ("dialect", "index"),
    [("postgres", i) for i in range(len(POSTGRES_MIGRATIONS))]
    + [("sqlite", i) for i in range(len(SQLITE_MIGRATIONS))],
)
def test_every_migration_only_expands(dialect: str, index: int) -> None:
    migrations = POSTGRES_MIGRATIONS if dialect == "postgres" else SQLITE_MIGRATIONS
    assert contracting_statements(migrations[index]) == [], (
        f"{dialect} migration {index + 1} contracts the schema: expand now, contract one release "
        "later (docs/canary.md)"
    )


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE agent_runs DROP COLUMN error",
        "ALTER TABLE agent_runs RENAME COLUMN error TO failure",
        "ALTER TABLE agent_runs ALTER COLUMN error TYPE JSONB",
        "ALTER TABLE agent_runs ALTER COLUMN error SET NOT NULL",
        "ALTER TABLE agent_runs ADD COLUMN attempt INTEGER NOT NULL",
        "DROP TABLE agent_audit_log",
        "DELETE FROM agent_runs",
        "UPDATE agent_runs SET status = 'error'",
    ],
)
def test_a_contracting_statement_is_named(statement: str) -> None:
    assert contracting_statements(statement + ";") == [statement]


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE agent_runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE agent_runs ADD COLUMN IF NOT EXISTS note TEXT",
        "CREATE INDEX IF NOT EXISTS agent_runs_status ON agent_runs (status)",
    ],
)
def test_an_expanding_statement_passes(statement: str) -> None:
    assert contracting_statements(statement) == []
