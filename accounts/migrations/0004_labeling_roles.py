from importlib import import_module

from django.db import migrations


def forwards(apps, schema_editor):
    # The roles gained the labeling permissions: create them and set every role's permissions again.
    import_module("accounts.migrations.0002_roles").forwards(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_model_roles"), ("labeling", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
