from importlib import import_module

from django.db import migrations


def forwards(apps, schema_editor):
    # Scoped queues: everyone labelling may see them, managers and admins edit them.
    import_module("accounts.migrations.0002_roles").forwards(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_labeling_roles"), ("labeling", "0003_labeling_queue")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
