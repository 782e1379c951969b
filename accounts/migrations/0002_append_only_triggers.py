"""R30/R51: ledger entries and audit events can be added, never changed or removed (see accounts.db)."""

from django.db import migrations

from accounts.db import create_append_only_trigger, drop_append_only_trigger

TABLES = ["accounts_ledgerentry", "accounts_auditevent"]


def create_triggers(apps, schema_editor):
    for table in TABLES:
        create_append_only_trigger(schema_editor, table)


def drop_triggers(apps, schema_editor):
    for table in TABLES:
        drop_append_only_trigger(schema_editor, table)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
