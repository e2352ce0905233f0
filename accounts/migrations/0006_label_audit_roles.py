from importlib import import_module

from django.db import migrations


def forwards(apps, schema_editor):
    # Label checks: managers and admins see them, admins start them.
    import_module("accounts.migrations.0002_roles").forwards(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_queue_roles"), ("mlcore", "0004_label_audit")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
