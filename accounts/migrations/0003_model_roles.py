from django.db import migrations


def forwards(apps, schema_editor):
    # The roles gained the model permissions: create them and set every role's permissions again.
    from importlib import import_module

    import_module("accounts.migrations.0002_roles").forwards(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_roles"), ("mlcore", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
