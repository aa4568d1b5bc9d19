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
    # A new function: older code never calls it (one it calls changing is caught below).
    re.compile(r"^CREATE OR REPLACE FUNCTION \w+\(", re.S),
)
_FUNCTION = re.compile(r"^CREATE OR REPLACE FUNCTION (\w+)\(")
# A function body between dollar quotes: its semicolons do not end the statement.
_DOLLAR_QUOTED = re.compile(r"\$(\w*)\$.*?\$\1\$", re.S)
_CONTRACTING = re.compile(
    r"\b(DROP|RENAME|TRUNCATE|DELETE\s+FROM|ALTER\s+COLUMN|SET\s+NOT\s+NULL|TYPE\s+\w+)\b"
)


def _statements(migration: str) -> list[str]:
    text = re.sub(r"--[^\n]*", "", migration)
    text = _DOLLAR_QUOTED.sub("$$body$$", text)
    return [" ".join(s.split()) for s in text.split(";") if s.strip()]


def _functions(migrations: tuple[str, ...]) -> set[str]:
    return {
        match.group(1)
        for migration in migrations
        for statement in _statements(migration)
        if (match := _FUNCTION.match(statement.upper()))
    }


def contracting_statements(migration: str, defined_before: set[str] | None = None) -> list[str]:
    """The statements of a migration that an older version of the service could trip on.
    `defined_before`: the functions earlier migrations created (upper case); replacing one
    changes what the older version's SQL does."""
    bad = []
    for statement in _statements(migration):
        upper = statement.upper()
        function = _FUNCTION.match(upper)
        replaced = function is not None and function.group(1) in (defined_before or set())
        if (
            replaced
            or not any(p.match(upper) for p in _ADDITIVE)
            or (_CONTRACTING.search(upper) and not upper.startswith("CREATE TABLE"))
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
    earlier = _functions(migrations[:index])
    assert contracting_statements(migrations[index], earlier) == [], (
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


_FUNCTION_TEXT = """
    CREATE OR REPLACE FUNCTION agent_check(p TEXT) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF p IS NULL THEN RAISE EXCEPTION 'no'; END IF;
    END
    $$;
"""


def test_a_new_function_expands_and_replacing_one_contracts() -> None:
    assert contracting_statements(_FUNCTION_TEXT) == []
    statement = " ".join(_DOLLAR_QUOTED.sub("$$body$$", _FUNCTION_TEXT).split()).rstrip(";")
    assert contracting_statements(_FUNCTION_TEXT, {"AGENT_CHECK"}) == [statement]
