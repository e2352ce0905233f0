from __future__ import annotations

import json

import pytest

from catalog import selectors
from catalog.imports.reading import FileFormatError
from catalog.models import Category
from catalog.services.taxonomy import taxonomy_import
from tests.conftest import DEMO_DATA

SHOPIFY_JSON = {
    "version": "2024-07",
    "verticals": [
        {
            "name": "Home & Garden",
            "prefix": "hg",
            "categories": [
                {"id": "hg", "name": "Home & Garden", "parent_id": None},
                {"id": "hg-1", "name": "Kitchen", "parent_id": "hg"},
                {"id": "hg-1-1", "name": "Dishwashers", "parent_id": "hg-1"},
            ],
        },
    ],
}


def test_shopify_json(db, write_file):
    report = taxonomy_import(path=write_file("t.json", json.dumps(SHOPIFY_JSON)), release="2024-07")

    assert (report.created, report.ok) == (3, True)
    dish = Category.objects.get(external_id="hg-1-1")
    assert dish.full_path_en == "Home & Garden > Kitchen > Dishwashers"
    assert dish.depth == 3
    assert Category.objects.get(external_id="hg-1").has_children


def test_chinese_names_merge_by_id(db, write_file):
    taxonomy_import(path=write_file("t.json", json.dumps(SHOPIFY_JSON)))
    zh = "id,parent_id,name\nhg,,家居与园艺\nhg-1,hg,厨房\nhg-1-1,hg-1,洗碗机\n"
    report = taxonomy_import(path=write_file("zh.csv", zh), language="zh-hans")

    assert (report.created, report.updated) == (0, 3)
    dish = Category.objects.get(external_id="hg-1-1")
    assert dish.full_path_zh_hans == "家居与园艺 > 厨房 > 洗碗机"
    assert dish.display_path("zh-hans") == "家居与园艺 > 厨房 > 洗碗机"
    assert dish.display_path("en") == "Home & Garden > Kitchen > Dishwashers"


def test_path_column_csv_builds_every_prefix(db, write_file):
    content = "path\nSports > Bikes > Road bikes\nSports > Bikes > Mountain bikes\nSports\n"
    report = taxonomy_import(path=write_file("t.csv", content))

    assert report.created == 4
    road = Category.objects.get(name_en="Road bikes")
    assert road.parent.name_en == "Bikes"
    again = taxonomy_import(path=write_file("t.csv", content))
    assert (again.created, again.unchanged) == (0, 4)


def test_missing_parent_and_cycle_write_nothing(db, write_file):
    content = "id,parent_id,name\na,,A\nb,zz,B\nc,d,C\nd,c,D\n"
    report = taxonomy_import(path=write_file("t.csv", content))

    assert not report.written
    assert Category.objects.count() == 0
    reasons = {(e.line, e.field): e.reason for e in report.errors}
    assert "parent does not exist" in reasons[(3, "parent_id")]
    assert "loops back" in reasons[(4, "parent_id")]


def test_moving_a_category_moves_its_subtree(db, write_file):
    taxonomy_import(path=write_file("t.csv", "id,parent_id,name\na,,A\nb,,B\na1,a,A1\na11,a1,A11\n"))
    report = taxonomy_import(path=write_file("t2.csv", "id,parent_id,name\na1,b,A1\n"))

    assert report.updated == 1
    a11 = Category.objects.get(external_id="a11")
    assert a11.full_path_en == "B > A1 > A11"
    b = Category.objects.get(external_id="b")
    assert set(selectors.category_subtree_ids(category=b)) == set(
        Category.objects.filter(external_id__in=["b", "a1", "a11"]).values_list("pk", flat=True)
    )
    assert not Category.objects.get(external_id="a").has_children


def test_jsonl_is_not_a_taxonomy_format(db, write_file):
    with pytest.raises(FileFormatError):
        taxonomy_import(path=write_file("t.jsonl", "{}"))


@pytest.mark.slow
def test_shipped_shopify_taxonomy_at_full_size(db):
    folder = DEMO_DATA / "shopify-taxonomy"
    report = taxonomy_import(path=folder / "categories_2024-07_en.tsv", release="2024-07")
    assert report.created == 10281
    zh = taxonomy_import(path=folder / "categories_2024-07_zh-CN.tsv", language="zh-hans")
    assert zh.ok
    assert Category.objects.filter(has_children=False).count() == 8251
    assert Category.objects.filter(depth=1).count() == 25
    for query in ("洗碗机", "dishwashers", "kitchen appliances dishwashers"):
        results = list(selectors.category_search(query=query))
        assert results[0].name_en == "Dishwashers", query
