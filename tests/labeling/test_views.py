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


def _uncertainty_first(settings) -> None:
    settings.LABELING_STRATEGY_WEIGHTS = {"uncertainty": 1.0, "disagreement": 0.0, "random": 0.0}
    settings.LABELING_DOUBLE_SHARE = 0.0


def test_the_next_item_waits_on_deck_and_the_answer_brings_the_one_after(
    settings, queue_catalog, annotators, small_tree
):
    _uncertainty_first(settings)
    client = _login(annotators[0])
    assert "item 0" in client.get(reverse("labeling:workspace")).content.decode()
    deck = client.get(reverse("labeling:deck"), HTTP_HX_REQUEST="true").content.decode()
    assert "item 1" in deck
    assert "item 1" in client.get(reverse("labeling:deck"), HTTP_HX_REQUEST="true").content.decode()  # same lease
    # Held on deck, item 1 is not handed to someone else (overlap 1): they get item 2.
    assert "item 2" in _login(annotators[1]).get(reverse("labeling:workspace")).content.decode()

    first = Product.objects.get(sku="Q000")
    response = client.post(
        reverse("labeling:answer"),
        {"product": first.pk, "version": first.version, "category": small_tree["dish"].pk, "deck": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert response["X-Answer"] == "saved"
    body = response.content.decode()
    assert "item 3" in body  # the page shows item 1 already, item 2 is the other annotator's
    assert 'data-stat="today">1<' in body  # the counts as they are now, for the page to freshen
    assert "item 1" in client.get(reverse("labeling:workspace")).content.decode()  # a reload: the current item


def test_a_refused_answer_brings_back_the_current_item_with_the_reason(settings, queue_catalog, annotators, small_tree):
    _uncertainty_first(settings)
    client = _login(annotators[0])
    client.get(reverse("labeling:workspace"))
    client.get(reverse("labeling:deck"))
    first = Product.objects.get(sku="Q000")
    response = client.post(
        reverse("labeling:answer"),
        {"product": first.pk, "version": first.version + 1, "category": small_tree["dish"].pk, "deck": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert response["X-Answer"] == "refused"
    body = response.content.decode()
    assert "changed since you opened it" in body
    assert "item 0" in body
    assert not Product.objects.get(pk=first.pk).is_verified


def test_an_empty_deck_answers_204(settings, small_tree, annotators):
    from tests.factories import ProductFactory

    _uncertainty_first(settings)
    ProductFactory(sku="ONLY", title="the only item")
    client = _login(annotators[0])
    assert "the only item" in client.get(reverse("labeling:workspace")).content.decode()
    assert client.get(reverse("labeling:deck")).status_code == 204


def test_undo_lets_the_item_on_deck_go(settings, queue_catalog, annotators, small_tree):
    from labeling.models import Lease

    _uncertainty_first(settings)
    client = _login(annotators[0])
    client.get(reverse("labeling:workspace"))
    client.get(reverse("labeling:deck"))
    first = Product.objects.get(sku="Q000")
    client.post(
        reverse("labeling:answer"),
        {"product": first.pk, "version": first.version, "category": small_tree["dish"].pk, "deck": "1"},
    )
    assert Lease.objects.filter(annotator=annotators[0]).count() == 2  # item 1 (current) and item 2 (on deck)
    page = client.post(reverse("labeling:answer"), {"action": "undo"}, HTTP_HX_REQUEST="true").content.decode()
    assert "item 0" in page
    assert list(Lease.objects.filter(annotator=annotators[0]).values_list("product__sku", flat=True)) == ["Q000"]
