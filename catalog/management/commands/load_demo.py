"""Load the demo catalog from demo_data/: the Shopify taxonomy (English + Chinese), the merchant extensions, and the
35,311 PriceRunner offers; create the demo users. Safe to run again: a loaded catalog is left as it is."""

from __future__ import annotations

import csv
import hashlib
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.text import slugify

from accounts.roles import Role
from accounts.services import roles_ensure, user_role_assign
from catalog.imports.products import product_import
from catalog.models import Category, CategorySource, Product
from catalog.services.labels import product_category_set
from catalog.services.taxonomy import taxonomy_import

RELEASE = "2024-07"
DEMO_USERS = (("annotator", Role.ANNOTATOR), ("manager", Role.CATALOG_MANAGER), ("admin", Role.ADMIN))
DEMO_PASSWORD = "demo"


def _stable_share(key: str) -> float:
    """A number in [0, 1) fixed by the key, so the demo is the same on every machine."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32


def merchant_node_id(name: str) -> str:
    return f"merchant-{slugify(name)}"


class Command(BaseCommand):
    help = "Load the demo taxonomy, products and users (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data-dir", type=Path, default=settings.DEMO_DATA_DIR)
        parser.add_argument(
            "--seed-per-category", type=int, default=20, help="verified labels per PriceRunner category (default 20)"
        )
        parser.add_argument(
            "--imported-share",
            type=float,
            default=0.5,
            help="share of offers that arrive with their merchant category, unverified",
        )
        parser.add_argument("--limit", type=int, default=0, help="load only the first N offers (0: all)")
        parser.add_argument("--force", action="store_true", help="re-run the import even if the demo is loaded")

    def handle(self, *args: Any, **options: Any) -> None:
        data: Path = options["data_dir"]
        offers_file = data / "pricerunner" / "pricerunner_aggregate.csv"
        if not offers_file.is_file():
            raise CommandError(f"Demo data not found in {data}.")
        roles_ensure()
        users = self._users()
        offers = list(csv.reader(offers_file.open(encoding="utf-8")))
        if options["limit"]:
            offers = offers[: options["limit"]]
        loaded = Product.objects.filter(sku__startswith="PR-").count()
        if (
            loaded >= len(offers)
            and Category.objects.filter(taxonomy_release=RELEASE).exists()
            and not options["force"]
        ):
            self.stdout.write(f"Demo catalog already loaded ({loaded} offers); users are ready. --force reloads.")
            return
        self._taxonomy(data)
        mapping = self._category_map(data)
        self._products(offers, mapping, options["imported_share"])
        self._seed(offers, mapping, options["seed_per_category"], users["admin"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo loaded: {Category.objects.count()} categories, {Product.objects.count()} products."
            )
        )

    def _users(self) -> dict[str, Any]:
        user_model = get_user_model()
        users = {}
        for username, role in DEMO_USERS:
            user, created = user_model.objects.get_or_create(username=username)
            if created:
                user.set_password(DEMO_PASSWORD)
                user.is_staff = role == Role.ADMIN
                user.is_superuser = role == Role.ADMIN
                user.save()
            user_role_assign(user=user, role=role)
            users[username] = user
        return users

    def _taxonomy(self, data: Path) -> None:
        folder = data / "shopify-taxonomy"
        for language, name in (("en", "categories_2024-07_en.tsv"), ("zh-hans", "categories_2024-07_zh-CN.tsv")):
            report = taxonomy_import(path=folder / name, language=language, release=RELEASE)
            if not report.ok:
                raise CommandError(f"{name}: {report.errors[:5]}")
            self.stdout.write(f"Taxonomy {language}: {report.created} created, {report.updated} updated.")

    def _category_map(self, data: Path) -> dict[str, str]:
        """PriceRunner category -> external id; merchants' own nodes (Fridges...) are added under Shopify's."""
        rows = list(csv.DictReader((data / "pricerunner" / "category_map.csv").open(encoding="utf-8")))
        mapping: dict[str, str] = {}
        with tempfile.TemporaryDirectory() as tmp:
            extension = Path(tmp) / "merchant_extensions.csv"
            with extension.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["id", "parent_id", "name", "name_zh_hans"])
                for row in rows:
                    if row["extends_shopify"] == "yes":
                        node = merchant_node_id(row["pricerunner_category"])
                        writer.writerow(
                            [
                                node,
                                row["shopify_node"],
                                row["path_en"].split(" > ")[-1],
                                row["path_zh"].split(" > ")[-1],
                            ]
                        )
                        mapping[row["pricerunner_category"]] = node
                    else:
                        mapping[row["pricerunner_category"]] = row["shopify_node"]
            report = taxonomy_import(path=extension, release="merchant")
            if not report.ok:
                raise CommandError(f"merchant extensions: {report.errors[:5]}")
        return mapping

    def _products(self, offers: list[list[str]], mapping: dict[str, str], imported_share: float) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            products = Path(tmp) / "pricerunner_offers.csv"
            with products.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["sku", "title", "category", "merchant_id", "cluster_id"])
                for product_id, title, merchant_id, cluster_id, _cluster, _cat_id, category in offers:
                    sku = f"PR-{product_id}"
                    # Half the offers arrive with the merchant's category (unverified); the rest with none.
                    imported = _stable_share(sku) < imported_share
                    writer.writerow([sku, title, mapping[category] if imported else "", merchant_id, cluster_id])
            report = product_import(path=products)
            if not report.ok:
                raise CommandError(f"offers: {report.errors[:5]}")
            self.stdout.write(
                f"Offers: {report.created} created, {report.updated} updated, {report.unchanged} unchanged."
            )

    def _seed(self, offers: list[list[str]], mapping: dict[str, str], per_category: int, actor: Any) -> None:
        """A small verified seed per category, as a team would label before the first model exists."""
        by_category: dict[str, list[str]] = {}
        for row in sorted(offers, key=lambda r: _stable_share("seed-" + r[0])):
            bucket = by_category.setdefault(row[6], [])
            if len(bucket) < per_category:
                bucket.append(f"PR-{row[0]}")
        categories = dict(Category.objects.filter(external_id__in=mapping.values()).values_list("external_id", "pk"))
        products = {p.sku: p for p in Product.objects.filter(sku__in=[s for b in by_category.values() for s in b])}
        seeded = 0
        with transaction.atomic():
            for category, skus in by_category.items():
                category_pk = categories[mapping[category]]
                for sku in skus:
                    product = products[sku]
                    if product.is_verified:
                        continue
                    product_category_set(
                        product_id=product.pk,
                        category_id=category_pk,
                        expected_version=product.version,
                        source=CategorySource.MANUAL,
                        actor=actor,
                        verified=True,
                        note="demo seed",
                    )
                    seeded += 1
        self.stdout.write(f"Verified seed: {seeded} products.")
