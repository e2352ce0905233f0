# Written by hand. Django's own AlterField(db_index=False) drops every index on exactly the column, which on
# PostgreSQL takes the partial unique index prediction_product_zeroshot with it (one zero-shot row per product), and
# it drops and re-validates both foreign keys, a full scan of a table with a row per product and version. Here the
# state changes as AlterField would and the database loses only the two single-column indexes, which the unique
# (product, model_version) and the (model_version, ...) indexes already lead with.

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "mlcore_prediction_product_id_7eae573c": "product_id",
    "mlcore_prediction_model_version_id_dc952201": "model_version_id",
}


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0004_product_import_batch"),
        ("mlcore", "0005_one_queued_label_audit"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="prediction",
                    name="model_version",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="predictions",
                        to="mlcore.modelversion",
                    ),
                ),
                migrations.AlterField(
                    model_name="prediction",
                    name="product",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="predictions",
                        to="catalog.product",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "mlcore_prediction" ("{column}")',
                )
                for name, column in INDEXES.items()
            ],
        ),
    ]
