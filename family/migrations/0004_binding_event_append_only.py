"""R25: binding events are history; they can be added, never changed or removed (see accounts.db)."""

from django.db import migrations

from accounts.db import create_append_only_trigger, drop_append_only_trigger

TABLE = "family_bindingevent"


def create_trigger(apps, schema_editor):
    create_append_only_trigger(schema_editor, TABLE)


def drop_trigger(apps, schema_editor):
    drop_append_only_trigger(schema_editor, TABLE)


class Migration(migrations.Migration):
    dependencies = [("family", "0003_bindings")]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
