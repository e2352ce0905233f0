"""The corpus of broken files in tests/data/imports/, through every importer: each is refused with a file-level
message or a row-level report (line, field, reason), and nothing is written; big ones (a 10 MB cell, a 1 GB file
with no line break, 100,000 rows with one bad row last) keep the importer's memory bounded (peak RSS, measured in a
process of its own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from catalog.imports.products import product_import
from catalog.imports.reading import FileFormatError
from catalog.models import Category, Product
from catalog.services.taxonomy import taxonomy_import

CORPUS = Path(__file__).resolve().parents[2] / "data" / "imports"
REPO = Path(__file__).resolve().parents[3]

# file -> a file-level refusal (a words it must say) or the row-level errors as (line, field)
PRODUCTS = {
    "latin1.csv": "not UTF-8: byte 0xfc on line 2",
    "utf16.csv": "UTF-16",
    "binary.csv": "PNG image",
    "empty.csv": "empty",
    "missing_title_column.csv": "Missing column(s): title",
    "semicolons.csv": "Is it comma-separated?",
    "duplicate_skus.csv": [(4, "sku")],
    "extra_and_short_rows.csv": [(2, ""), (3, "")],
    "unknown_category.csv": [(2, "category"), (3, "category")],
    "empty_sku_and_title.csv": [(2, "sku"), (3, "title")],
    "too_long_title.csv": [(2, "title")],
    "unterminated_quote.csv": [(2, "")],
    "nul_bytes.csv": [(302, "title")],
    "nul_in_jsonl.jsonl": [(2, "title"), (3, "attributes")],
    "not_objects.jsonl": [(2, ""), (3, ""), (4, "attributes"), (5, "")],
}
TAXONOMIES = {
    "empty.json": "Not valid JSON",
    "not_json.json": "Not valid JSON at line 1, column 27",
    "binary.json": "binary",
    "wrong_shape.json": "Expected a Shopify taxonomy JSON",
    "paths_latin1.csv": "not UTF-8",
    "paths_missing_column.csv": [(2, "path")],
}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_a_broken_product_file_is_refused_and_writes_nothing(small_tree, name):
    expected = PRODUCTS[name]
    before = Product.objects.count()
    if isinstance(expected, str):
        with pytest.raises(FileFormatError) as refused:
            product_import(path=CORPUS / "products" / name)
        assert expected in refused.value.message
    else:
        report = product_import(path=CORPUS / "products" / name)
        assert [(error.line, error.field) for error in report.errors] == expected
        assert all(error.reason for error in report.errors)
        assert not report.written
    assert Product.objects.count() == before


@pytest.mark.parametrize("name", sorted(TAXONOMIES))
def test_a_broken_taxonomy_file_is_refused_and_writes_nothing(small_tree, name):
    expected = TAXONOMIES[name]
    before = list(Category.objects.order_by("pk").values_list("pk", "name_en", "parent_id", "is_active"))
    if isinstance(expected, str):
        with pytest.raises(FileFormatError) as refused:
            taxonomy_import(path=CORPUS / "taxonomy" / name)
        assert expected in refused.value.message
    else:
        report = taxonomy_import(path=CORPUS / "taxonomy" / name)
        assert [(error.line, error.field) for error in report.errors] == expected
        assert not report.written
    assert list(Category.objects.order_by("pk").values_list("pk", "name_en", "parent_id", "is_active")) == before


def test_files_that_are_only_odd_import_as_text(small_tree):
    """A BOM with Chinese text imports; formula-looking cells are data, kept as typed (every export escapes them:
    tests/catalog/services/test_exports.py); a header with no rows writes nothing and says so."""
    report = product_import(path=CORPUS / "products" / "bom_and_chinese.csv")
    assert (report.created, report.error_count) == (2, 0)
    assert Product.objects.get(sku="A1").title == "冰箱 双门"
    report = product_import(path=CORPUS / "products" / "formula_cells.csv")
    assert report.error_count == 0
    assert Product.objects.get(sku="A1").title.startswith("=HYPERLINK(")
    assert product_import(path=CORPUS / "products" / "header_only.csv").rows == 0


PROBE = """
import json, os, resource, sys
import django
django.setup()
from catalog.imports.products import product_import
from catalog.imports.reading import FileFormatError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    report = product_import(path=__import__("pathlib").Path(sys.argv[1]))
    outcome = {"rows": report.rows, "errors": [[e.line, e.field, e.reason] for e in report.errors[:3]],
               "written": report.written}
except FileFormatError as exc:
    outcome = {"refused": exc.message}
outcome["grew_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps(outcome))
"""


def _import_in_a_process(path: Path) -> dict:
    """product_import in a fresh process against this test database; its peak RSS growth over a loaded Django."""
    settings = connection.settings_dict
    url = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
    environment = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environment,
        timeout=600,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_big_files_keep_memory_bounded(transactional_db, tmp_path):
    # A 10 MB cell: a row error, not a 10 MB title.
    cell = tmp_path / "ten_mb_cell.csv"
    cell.write_text("sku,title\nA1," + "x" * (10 * 2**20) + "\n")
    outcome = _import_in_a_process(cell)
    assert outcome["errors"][0][:2] == [2, "title"]
    assert outcome["grew_mb"] < 150

    # 1 GB with no line break, made on the fly: refused after reading one line's worth, not read whole.
    gigabyte = tmp_path / "one_gigabyte.csv"
    with gigabyte.open("wb") as handle:
        handle.write(b"sku,title\nA1,")
        block = b"y" * 2**26
        for _ in range(16):
            handle.write(block)
    assert gigabyte.stat().st_size > 2**30
    outcome = _import_in_a_process(gigabyte)
    gigabyte.unlink()
    assert "longer than 32 MB" in outcome["refused"]
    assert outcome["grew_mb"] < 150

    # 100,000 good rows and one bad one last: all validated, nothing written, memory far below the file's rows.
    many = tmp_path / "many_rows.csv"
    with many.open("w") as handle:
        handle.write("sku,title,brand,description\n")
        for i in range(100_000):
            handle.write(f"S{i},Product number {i} with a plain title,Acme,{'a description ' * 10}\n")
        handle.write(",no sku here,Acme,\n")
    outcome = _import_in_a_process(many)
    assert outcome["rows"] == 100_001
    assert outcome["errors"][0][:2] == [100_002, "sku"]
    assert outcome["written"] is False
    assert outcome["grew_mb"] < 120
    assert not Product.objects.filter(sku__startswith="S").exists()
