from __future__ import annotations

from django.test import Client
from django.urls import reverse

from catalog.models import Product


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_workspace_shows_item_suggestions_keys_and_counts(settings, queue_catalog, annotators, small_tree):
    settings.LABELING_STRATEGY_WEIGHTS = {"uncertainty": 1.0, "disagreement": 0.0, "random": 0.0}
    client = _login(annotators[0])
    page = client.get(reverse("labeling:workspace")).content.decode()
    assert "item 0" in page
    assert "zero-shot" in page
    for key in (
        "<kbd>1</kbd>",
        "<kbd>/</kbd>",
        "<kbd>Enter</kbd>",
        "<kbd>s</kbd>",
        "<kbd>f</kbd>",
        "<kbd>u</kbd>",
        "<kbd>?</kbd>",
    ):
        assert key in page
    product = Product.objects.get(sku="Q000")
    answer = client.post(
        reverse("labeling:answer"),
        {"product": product.pk, "version": product.version, "category": small_tree["dish"].pk, "action": "label"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "<html" not in answer  # the partial, with the next item in it
    assert "item 1" in answer
    assert 'data-stat="today">1<' in answer


def test_picker_ranks_the_suggested_categories_first(annotators, small_tree):
    client = _login(annotators[0])
    html = client.get(reverse("labeling:picker"), {"q": "e", "suggested": [small_tree["fridge"].pk]}).content.decode()
    assert html.index("Fridges") < html.index("Dishwashers")
    assert "★" in html


def test_managers_label_too_but_a_user_without_a_role_cannot(db, manager):
    from tests.factories import UserFactory

    assert _login(manager).get(reverse("labeling:workspace")).status_code == 200
    assert _login(UserFactory(username="nobody")).get(reverse("labeling:workspace")).status_code == 403
