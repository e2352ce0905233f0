"""An annotator labels five items with the keyboard only, skips one, undoes one; the labels of record are right."""

from __future__ import annotations

import pytest

from accounts.roles import Role
from catalog.models import Product
from labeling.models import Annotation
from tests.e2e.conftest import login
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_keyboard_only_labeling(live_server, page, screenshot, settings, queue_catalog, small_tree):
    settings.LABELING_STRATEGY_WEIGHTS = {"uncertainty": 1.0, "disagreement": 0.0, "random": 0.0}
    settings.LABELING_OVERLAP = 1
    settings.LABELING_DOUBLE_SHARE = 0.0
    settings.LABELING_RETRAIN_EVERY = 0
    UserFactory(username="annotator", role=Role.ANNOTATOR)
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/label/")
    # Each answer should go out in the background with the prepared item already on screen (deck), never by a reload.
    answers: list[str] = []
    page.on("request", lambda r: answers.append(r.post_data or "") if r.url.endswith("/label/answer/") else None)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    def title() -> str:
        return page.locator("#product-title").inner_text()

    def wait_for_new(previous: str) -> None:
        # The new item is on screen and htmx has settled it (its inputs listen again), as a person would see it.
        page.wait_for_function(
            f"document.querySelector('#product-title')?.innerText !== {previous!r}"
            " && !document.querySelector('.htmx-swapping, .htmx-settling, .htmx-request')"
        )

    labelled: dict[str, str] = {}
    for n in range(5):
        current = title()
        if n % 2 == 0:
            page.keyboard.press("1")  # the first suggestion (Dishwashers)
            labelled[current] = "hg-11-1"
        else:
            page.keyboard.press("/")
            page.keyboard.type("fridg")
            page.wait_for_selector("#picker-results .pick")
            labelled[current] = "hg-11-2"
        if n == 0:
            screenshot("labeling-workspace")
        page.keyboard.press("Enter")
        if n == 0:
            page.keyboard.press("Enter")  # an impatient second Enter must not answer (or skip) the next item
        wait_for_new(current)

    assert list(labelled) == [f"item {i}" for i in range(5)]  # the queue's order, none skipped over
    skipped = title()
    page.keyboard.press("s")
    wait_for_new(skipped)

    # u takes back the skip: the skipped item is on screen again; label it this time.
    before_undo = title()
    page.keyboard.press("u")
    wait_for_new(before_undo)
    assert title() == skipped
    page.keyboard.press("2")  # the second suggestion (Fridges)
    page.keyboard.press("Enter")
    wait_for_new(skipped)
    labelled[skipped] = "hg-11-2"

    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    # Answers are saved in the background while the next item is already on screen: wait for the last one.
    page.wait_for_function("document.body.dataset.pending === '0'")
    assert page.locator("#save-state").inner_text() == "saved"
    ahead = [a for a in answers if 'name="deck"' in a]
    assert len(ahead) >= 6, answers  # 5 labels, the skip, the relabel after the undo: all but the undo itself
    assert navigations == []

    for item_title, category in labelled.items():
        product = Product.objects.select_related("category").get(title=item_title)
        assert product.is_verified, item_title
        assert product.category.external_id == category, item_title
        assert product.category_source == "annotation"
    assert Annotation.objects.filter(kind="skip", undone_at__isnull=True).count() == 0
    assert Product.objects.filter(is_verified=True).count() == 6
