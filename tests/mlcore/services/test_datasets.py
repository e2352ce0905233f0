from __future__ import annotations

from mlcore.models import (
    TestSetItem,
)
from tests.mlcore.services.runs import train_version


def test_test_set_is_frozen_across_versions(ml_settings, labelled_catalog, manager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        first = train_version(manager)
        first_test = set(first.data_snapshot["test_ids"])
        assert first_test == set(TestSetItem.objects.values_list("product_id", flat=True))
        second = train_version(manager)
    assert set(second.data_snapshot["test_ids"]) >= first_test
    assert not first_test & set(second.data_snapshot["train_ids"])
