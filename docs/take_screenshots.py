"""Screenshots for the README, taken from a running `make demo` (http://127.0.0.1:8000) in Debian's Chromium.

.venv/bin/python docs/take_screenshots.py [--base-url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

OUT = Path(__file__).resolve().parent / "screenshots"


def signed_in(browser: Browser, base: str, username: str) -> Page:
    """A new page with its own session, logged in as one of the demo users."""
    page = browser.new_page(viewport={"width": 1360, "height": 860})
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "demo")
    page.click("button[type=submit]")
    page.wait_for_url("**/catalog/products/**")
    return page


def reclassify(page: Page, base: str) -> None:
    """The newest batch's changes: where the model disputes a merchant's category (needs a trained version)."""
    page.goto(f"{base}/reclassify/")
    page.locator("tbody tr a").first.click()
    page.select_option("select[name=kind]", "change")
    page.locator("button:text-is('Show')").click()
    page.wait_for_load_state()
    page.screenshot(path=str(OUT / "reclassify.png"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    base = parser.parse_args().base_url
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = signed_in(browser, base, "manager")
        page.goto(f"{base}/catalog/products/?source=import&verified=no")
        page.screenshot(path=str(OUT / "product-list.png"))
        page.goto(f"{base}/catalog/categories/")
        page.locator("li:has(> a:text-is('Home & Garden')) > button.toggle").click()
        page.locator("li:has(> a:text-is('Kitchen & Dining')) > button.toggle").click()
        page.locator("li:has(> a:text-is('Kitchen Appliances')) > button.toggle").click()
        page.wait_for_selector("text=Dishwashers")
        page.fill("input[name=q]", "冰箱")
        page.wait_for_selector("#search-results tr")
        page.screenshot(path=str(OUT / "taxonomy-browser.png"))
        page.goto(f"{base}/catalog/products/?uncategorised=on")
        page.locator("#results tbody tr a").first.click()
        page.wait_for_selector("text=Suggestions")
        page.screenshot(path=str(OUT / "product-suggestions.png"))
        page = signed_in(browser, base, "annotator")
        page.goto(f"{base}/label/")
        page.keyboard.press("e")  # each suggestion's evidence: the nearest verified products
        page.keyboard.press("1")
        page.keyboard.press("/")
        page.keyboard.type("fridge")
        page.wait_for_selector("#picker-results .pick")
        page.screenshot(path=str(OUT / "labeling-workspace.png"))
        page = signed_in(browser, base, "admin")
        page.goto(f"{base}/models/")
        page.screenshot(path=str(OUT / "models-dashboard.png"), full_page=True)
        page.goto(f"{base}/dashboard/")
        # Every panel loads by itself; the workers' answers take up to 2 s.
        page.wait_for_selector("#panel-workers h2")
        page.wait_for_selector("#panel-labels h2")
        page.screenshot(path=str(OUT / "dashboard.png"), full_page=True)
        page = signed_in(browser, base, "manager")
        page.goto(f"{base}/review/")
        page.screenshot(path=str(OUT / "review.png"))
        reclassify(page, base)
        browser.close()


if __name__ == "__main__":
    main()
