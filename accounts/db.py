"""Database helpers shared by migrations: append-only tables guarded by triggers."""

from __future__ import annotations


def create_append_only_trigger(schema_editor, table: str) -> None:
    """Refuse UPDATE (and DELETE on PostgreSQL) of a table's rows for every code path, raw SQL included.

    PostgreSQL refuses UPDATE and DELETE; TRUNCATE, which only test flushes use, stays possible.
    SQLite refuses UPDATE only: Django flushes SQLite test databases with DELETE. The models'
    append-only query set refuses both in Python everywhere.
    """
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            f"""
            CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{table} is append-only';
            END;
            $$ LANGUAGE plpgsql;
            CREATE TRIGGER {table}_no_update_delete
                BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION {table}_append_only();
            """
        )
    elif vendor == "sqlite":
        schema_editor.execute(
            f"""
            CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
            """
        )


def drop_append_only_trigger(schema_editor, table: str) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table};")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {table}_append_only();")
    elif vendor == "sqlite":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update;")
