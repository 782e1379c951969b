"""R30/R51: ledger entries and audit events can be added, never changed or removed.

A database trigger holds the rule for every code path (raw SQL, admin, bulk updates).
PostgreSQL refuses UPDATE and DELETE (TRUNCATE, which only test flushes use, stays possible).
SQLite refuses UPDATE; it gets no DELETE trigger because Django flushes SQLite test
databases with DELETE. The models' append-only query set refuses both in Python everywhere.
"""

from django.db import migrations

TABLES = ["accounts_ledgerentry", "accounts_auditevent"]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in TABLES:
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
            for event in ("UPDATE",):
                schema_editor.execute(
                    f"""
                    CREATE TRIGGER {table}_no_{event.lower()}
                    BEFORE {event} ON {table}
                    BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
                    """
                )


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table};")
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {table}_append_only();")
        elif vendor == "sqlite":
            for event in ("update",):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{event};")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
