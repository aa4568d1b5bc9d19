"""Least privilege in PostgreSQL: who may do what, created by the migration step.

Privileges belong to NOLOGIN group roles; each workload logs in as its own LOGIN role, a member
of exactly one group. That is what lets AWS's alternating-users rotation work: its rotation
function clones the login role (`<name>_clone`) with the same group memberships and switches
the secret between the two
(https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets_strategies.html#rotating-secrets-two-users).

- `agent_schema_owner` owns every table; only the migrator (the migration Job) is a member.
- `agent_dml` may read and write rows, nothing else: the service (`agent_app`).
- `agent_read` may read: the backup (`agent_backup`, pg_dump).
- `agent_prune` may read and delete: retention (`agent_retention`).

The RDS master user is none of these: break-glass only, never mounted into a pod.

Creating a missing role needs CREATEROLE (the migrator has it; on PostgreSQL 16 it then
administers only the roles it created: https://www.postgresql.org/docs/16/sql-createrole.html).
When every role exists the step needs no more than membership in the owner role. Login roles
are created without a password: the rotation (or, locally, the environment) sets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import AsyncConnection, errors, sql

SCHEMA = "public"
OWNER = "agent_schema_owner"
DML = "agent_dml"
READ = "agent_read"
PRUNE = "agent_prune"
GROUPS = (OWNER, DML, READ, PRUNE)

MIGRATOR = "agent_migrator"
APP = "agent_app"
BACKUP = "agent_backup"
RETENTION = "agent_retention"
# Each login role and the one group it belongs to.
LOGINS: Mapping[str, str] = {MIGRATOR: OWNER, APP: DML, BACKUP: READ, RETENTION: PRUNE}
# What each group may do on every table and sequence of the schema.
TABLE_PRIVILEGES: Mapping[str, tuple[str, ...]] = {
    DML: ("SELECT", "INSERT", "UPDATE", "DELETE"),
    READ: ("SELECT",),
    PRUNE: ("SELECT", "DELETE"),
}
SEQUENCE_PRIVILEGES: Mapping[str, tuple[str, ...]] = {
    DML: ("USAGE", "SELECT", "UPDATE"),
    READ: ("SELECT",),
    PRUNE: ("SELECT",),
}


class MissingRoles(Exception):
    """The roles are missing and the migrating user cannot create them."""


class MissingExtension(Exception):
    """pgvector is not installed in the database and the migrating user cannot install it."""


VECTOR_EXTENSION = "vector"


async def ensure_vector_extension(conn: AsyncConnection[Any]) -> bool:
    """pgvector for the store's semantic search; returns whether it was created now.

    CREATE EXTENSION is the one step that needs more than the owner role: pgvector is not a
    trusted extension, so it takes a superuser, or on RDS a member of `rds_superuser` (the
    master user), once per database. RDS for PostgreSQL ships it as `vector` (15.2 and later:
    https://docs.aws.amazon.com/AmazonRDS/latest/PostgreSQLReleaseNotes/postgresql-extensions.html,
    https://aws.amazon.com/about-aws/whats-new/2023/05/amazon-rds-postgresql-pgvector-ml-model-integration/).
    Run as the migrating user, before it switches to the owner role; when it may not, the error
    names the one statement to run (docs/runbooks/rotate-credentials.md has it in the bootstrap).
    """
    cur = await conn.execute(
        "SELECT 1 FROM pg_extension WHERE extname = %s", (VECTOR_EXTENSION,), prepare=False
    )
    if await cur.fetchone() is not None:
        return False
    try:
        async with conn.transaction():
            await conn.execute(
                sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(
                    sql.Identifier(VECTOR_EXTENSION)
                )
            )
    except errors.InsufficientPrivilege as exc:
        raise MissingExtension(
            "the store's semantic search needs the pgvector extension and the migrating user "
            "may not create it: run `CREATE EXTENSION vector;` once in this database as a "
            "superuser (on RDS the master user, a member of rds_superuser), or set "
            "STORE_EMBEDDINGS=none"
        ) from exc
    except errors.UndefinedFile as exc:
        raise MissingExtension(
            "the store's semantic search needs the pgvector extension, which this PostgreSQL "
            "server does not have: install it (Debian: postgresql-<version>-pgvector; RDS "
            "ships it) or set STORE_EMBEDDINGS=none"
        ) from exc
    return True


def _first(row: Any) -> Any:
    """The first column of a row, whether the connection makes tuples or dicts."""
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


async def _existing(conn: AsyncConnection[Any]) -> set[str]:
    names = [*GROUPS, *LOGINS]
    cur = await conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (names,), prepare=False
    )
    return {
        str(row["rolname"] if isinstance(row, dict) else row[0]) for row in await cur.fetchall()
    }


async def ensure_roles(conn: AsyncConnection[Any]) -> list[str]:
    """Create the missing roles and memberships; returns the roles created."""
    existing = await _existing(conn)
    created: list[str] = []
    for group in GROUPS:
        if group not in existing and await _create(conn, group, "NOLOGIN"):
            created.append(group)
    for login, group in LOGINS.items():
        if login not in existing and await _create(conn, login, "LOGIN PASSWORD NULL"):
            created.append(login)
        if not await _is_member(conn, login, group):
            await conn.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(login))
            )
    # Whoever migrates creates the tables as the owner role: a migrator that is not the
    # `agent_migrator` login itself (a bootstrap user, the rotation's `_clone`) joins it.
    cur = await conn.execute(
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user", prepare=False
    )
    row = await cur.fetchone()
    superuser = bool(row and _first(row))
    if not superuser and not await _is_member(conn, await _current_user(conn), OWNER):
        await conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(OWNER)))
    return created


async def _current_user(conn: AsyncConnection[Any]) -> str:
    cur = await conn.execute("SELECT current_user", prepare=False)
    row = await cur.fetchone()
    return str(_first(row)) if row else ""


async def _create(conn: AsyncConnection[Any], role: str, options: str) -> bool:
    """Roles are per cluster: a migration of another database may create it first."""
    try:
        await conn.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(role)))
    except errors.DuplicateObject:
        return False
    except errors.InsufficientPrivilege as exc:
        raise MissingRoles(
            f"role {role!r} does not exist and the migrating user may not create roles: "
            "create the roles once as a user with CREATEROLE (the migrator has it; see "
            "docs/runbooks/rotate-credentials.md, bootstrap)"
        ) from exc
    return True


async def _is_member(conn: AsyncConnection[Any], member: str, group: str) -> bool:
    cur = await conn.execute(
        "SELECT pg_has_role(%s, %s, 'MEMBER') AS member", (member, group), prepare=False
    )
    row = await cur.fetchone()
    return bool(row and _first(row))


async def take_ownership(conn: AsyncConnection[Any]) -> None:
    """Hand the tables and sequences the connected user owns to the owner role (the first
    migration after the roles exist), so the migrator's clone, a member too, can alter them."""
    cur = await conn.execute(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = "
        "c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p') "
        "AND pg_get_userbyid(c.relowner) = current_user",
        (SCHEMA,),
        prepare=False,
    )
    for row in await cur.fetchall():
        name = str(_first(row))
        await conn.execute(
            sql.SQL("ALTER TABLE {}.{} OWNER TO {}").format(
                sql.Identifier(SCHEMA), sql.Identifier(name), sql.Identifier(OWNER)
            )
        )


async def grant_privileges(conn: AsyncConnection[Any]) -> None:
    """Idempotent: every group gets exactly its privileges on every table there is now, and
    on the tables the owner creates later (default privileges)."""
    schema = sql.Identifier(SCHEMA)
    owner = sql.Identifier(OWNER)
    for group in (DML, READ, PRUNE):
        role = sql.Identifier(group)
        tables = sql.SQL(", ").join(sql.SQL(p) for p in TABLE_PRIVILEGES[group])
        sequences = sql.SQL(", ").join(sql.SQL(p) for p in SEQUENCE_PRIVILEGES[group])
        await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role))
        await conn.execute(
            sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(tables, schema, role)
        )
        await conn.execute(
            sql.SQL("GRANT {} ON ALL SEQUENCES IN SCHEMA {} TO {}").format(sequences, schema, role)
        )
        await conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON TABLES TO {}"
            ).format(owner, schema, tables, role)
        )
        await conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON SEQUENCES TO {}"
            ).format(owner, schema, sequences, role)
        )
