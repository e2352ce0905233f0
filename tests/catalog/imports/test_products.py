from __future__ import annotations

import pytest

from catalog.imports.products import product_import
from catalog.imports.reading import FileFormatError
from catalog.models import CategoryChange, CategorySource, Product
from catalog.services.labels import product_category_set

GOOD = (
    "sku,title,description,brand,category,colour\n"
    "A1,Bosch dishwasher SMS2,Quiet,Bosch,hg-11-1,white\n"
    "A2,Samsung fridge RB34,,Samsung,Home & Garden > Kitchen > Fridges,silver\n"
    "A3,Unknown gadget,,,,\n"
)


def test_import_creates_products_with_category_source_and_attributes(small_tree, write_file):
    report = product_import(path=write_file("p.csv", GOOD))

    assert (report.created, report.updated, report.invalid, report.written) == (3, 0, 0, True)
    a1 = Product.objects.get(sku="A1")
    assert a1.category == small_tree["dish"]
    assert a1.category_source == CategorySource.IMPORT
    assert not a1.is_verified
    assert a1.attributes == {"colour": "white"}
    assert Product.objects.get(sku="A2").category == small_tree["fridge"]  # found by path
    assert Product.objects.get(sku="A3").category is None
    # Every category set writes an audit row, bulk import included, grouped by one batch.
    changes = CategoryChange.objects.all()
    assert changes.count() == 2
    assert len({c.batch for c in changes}) == 1


def test_reimport_changes_only_what_changed(small_tree, write_file):
    product_import(path=write_file("p.csv", GOOD))
    versions = dict(Product.objects.values_list("sku", "version"))

    again = product_import(path=write_file("p.csv", GOOD))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert dict(Product.objects.values_list("sku", "version")) == versions

    edited = GOOD.replace("Quiet", "Very quiet")
    report = product_import(path=write_file("p2.csv", edited))
    assert (report.updated, report.unchanged) == (1, 2)
    a1 = Product.objects.get(sku="A1")
    assert a1.description == "Very quiet"
    assert a1.version == versions["A1"] + 1


def test_three_broken_rows_write_nothing_and_report_line_field_reason(small_tree, write_file):
    content = GOOD + (
        ",No sku here,,,,\n"  # line 5
        "B2,Bad category,,,Home & Garden > Nowhere,\n"  # line 6
        "B3,too,many,fields,hg,x,extra\n"  # line 7
    )
    report = product_import(path=write_file("broken.csv", content))

    assert not report.written
    assert Product.objects.count() == 0
    assert [(e.line, e.field) for e in report.errors] == [(5, "sku"), (6, "category"), (7, "")]
    assert "no such category" in report.errors[1].reason
    assert "expected 6 fields" in report.errors[2].reason


def test_keep_valid_writes_the_valid_rows_only(small_tree, write_file):
    content = GOOD + ",No sku,,,,\n"
    report = product_import(path=write_file("broken.csv", content), keep_valid=True)

    assert report.written
    assert report.invalid == 1
    assert set(Product.objects.values_list("sku", flat=True)) == {"A1", "A2", "A3"}


def test_dry_run_reports_changes_and_writes_nothing(small_tree, write_file):
    report = product_import(path=write_file("p.csv", GOOD), dry_run=True)

    assert (report.created, report.written) == (3, False)
    assert Product.objects.count() == 0


def test_latin1_file_is_refused_with_a_clear_message(small_tree, write_file):
    content = "sku,title\nA1,Caf\xe9 machine\n".encode("latin-1")
    with pytest.raises(FileFormatError, match=r"not UTF-8.*line 2"):
        product_import(path=write_file("latin.csv", content))
    assert Product.objects.count() == 0


def test_utf8_with_bom_and_chinese_text(small_tree, write_file):
    content = "\ufeffsku,title,category\nZ1,洗碗机 西门子,家居与园艺 > 厨房 > 洗碗机\n".encode()
    report = product_import(path=write_file("bom.csv", content))

    assert report.ok
    product = Product.objects.get(sku="Z1")  # the BOM did not end up in the first column's name
    assert product.category == small_tree["dish"]


def test_missing_required_column_is_a_file_error(db, write_file):
    with pytest.raises(FileFormatError, match=r"Missing column.*title"):
        product_import(path=write_file("p.csv", "sku,name\nA1,x\n"))


def test_duplicate_sku_in_one_file_is_reported(small_tree, write_file):
    report = product_import(path=write_file("p.csv", "sku,title\nA1,x\nA1,y\n"))
    assert [(e.line, e.field) for e in report.errors] == [(3, "sku")]
    assert "first on line 2" in report.errors[0].reason


def test_jsonl_import_with_a_bad_line(small_tree, write_file):
    content = (
        '{"sku": "J1", "title": "Phone X", "category": "el-1", "attributes": {"storage": "64GB"}, "colour": "red"}\n'
        "{not json}\n"
    )
    report = product_import(path=write_file("p.jsonl", content))
    assert [(e.line, e.field) for e in report.errors] == [(2, "")]
    assert Product.objects.count() == 0

    report = product_import(path=write_file("p.jsonl", content), keep_valid=True)
    product = Product.objects.get(sku="J1")
    assert product.attributes == {"storage": "64GB", "colour": "red"}
    assert product.category == small_tree["phones"]


def test_unknown_category_path_is_created_only_when_asked(small_tree, write_file):
    content = "sku,title,category\nC1,Blender,Home & Garden > Kitchen > Blenders\n"
    assert not product_import(path=write_file("p.csv", content)).ok

    report = product_import(path=write_file("p.csv", content), create_categories=True)
    assert report.ok
    assert report.categories_created == 1
    blender = Product.objects.get(sku="C1").category
    assert blender.full_path_en == "Home & Garden > Kitchen > Blenders"
    assert blender.parent == small_tree["kitchen"]


def test_import_never_overwrites_a_verified_category(small_tree, write_file, manager):
    product_import(path=write_file("p.csv", GOOD))
    a1 = Product.objects.get(sku="A1")
    product_category_set(
        product_id=a1.pk,
        category_id=small_tree["fridge"].pk,
        expected_version=a1.version,
        source=CategorySource.ANNOTATION,
        actor=manager,
        verified=True,
    )

    report = product_import(path=write_file("p.csv", GOOD))

    assert report.kept_verified == 1
    a1.refresh_from_db()
    assert a1.category == small_tree["fridge"]
    assert a1.category_source == CategorySource.ANNOTATION


def test_a_category_change_can_be_reverted_exactly_once(small_tree, write_file, manager):
    from catalog.services.labels import product_category_revert
    from core.errors import ConflictError

    product_import(path=write_file("p.csv", GOOD))
    a1 = Product.objects.get(sku="A1")
    product_category_set(
        product_id=a1.pk,
        category_id=small_tree["fridge"].pk,
        expected_version=a1.version,
        source=CategorySource.ANNOTATION,
        actor=manager,
        verified=True,
    )
    change = CategoryChange.objects.filter(product=a1).latest("id")
    reverted = product_category_revert(change_id=change.pk, actor=manager)
    assert (reverted.category, reverted.category_source, reverted.is_verified) == (
        small_tree["dish"],
        CategorySource.IMPORT,
        False,
    )
    with pytest.raises(ConflictError):
        product_category_revert(change_id=change.pk, actor=manager)
