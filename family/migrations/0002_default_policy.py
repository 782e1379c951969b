"""C2, R12, R14, R37: load the shipped default policy (family/data/default_policy.json) once.

Migrations run once per database, so a later ``migrate`` never overwrites what ``load_policy``
or the admin changed afterwards. Reversing leaves the rows: they may have been edited since.
"""

from pathlib import Path

from django.db import migrations

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "data" / "default_policy.json"


def load_default_policy(apps, schema_editor):
    from family.policy_file import policy_document_decode
    from family.services import policy_load

    policy_load(
        document=policy_document_decode(DEFAULT_POLICY.read_bytes()),
        region_model=apps.get_model("accounts", "Region"),
        policy_model=apps.get_model("family", "PolicyVersion"),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("family", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(load_default_policy, migrations.RunPython.noop),
    ]
