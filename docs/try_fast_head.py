"""Against a running `make demo`: the annotator answers items through the API (each with its top suggestion, as a
hurried annotator would) until its answers have made MLCORE_FAST_HEAD_EVERY (25) verified labels, then this times
how long the fast version they make due takes to serve.

    python docs/try_fast_head.py [--url http://127.0.0.1:8000] [--every 25]

Items the queue holds for a second annotator are not verified by one answer, so it takes a few more answers than
labels. The time is counted from the answer that made the 25th label, not from the last answer: a fit that waits
(behind a re-score, say) shows in it. Labels made before the script began count towards the 25 as well, so on a demo
that was used already a fast version may come sooner; it is reported as it comes.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any


def call(
    base: str,
    method: str,
    path: str,
    token: str | None = None,
    body: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Token {token}"} if token else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(urllib.request.Request(base + path, data=data, method=method, headers=headers)) as r:
        raw = r.read()
        return r.status, json.loads(raw) if raw else {}


def versions(base: str, token: str) -> list[dict[str, Any]]:
    _, listed = call(base, "GET", "/api/v1/model-versions/", token)
    return list(listed["results"] if isinstance(listed, dict) else listed)


def scored(base: str, token: str, item: dict[str, Any]) -> list[dict[str, Any]]:
    """The item's suggestions once it has some. Right after `make demo` starts, zero-shot is still scoring the catalog
    in the background (a few minutes for the demo's 35k offers) and the queue hands out items it has not reached: wait
    for it rather than answer without a suggestion, until shortly before the item's lease runs out."""
    product_id = item["product"]["id"]
    lease_ends = datetime.fromisoformat(item["expires_at"])
    print(f"product {product_id} has no suggestion yet: waiting for zero-shot to score it", flush=True)
    while (lease_ends - datetime.now(UTC)).total_seconds() > 30:
        suggestions = call(base, "GET", f"/api/v1/products/{product_id}/suggestions/", token)[1]
        if suggestions:
            return list(suggestions)
        time.sleep(5)
    raise SystemExit(f"product {product_id} still has no suggestion as its lease ends (is the worker running?)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--every", type=int, default=25, help="the server's MLCORE_FAST_HEAD_EVERY")
    args = parser.parse_args()
    base = args.url
    annotator = call(base, "POST", "/api/v1/auth/token/", form={"username": "annotator", "password": "demo"})[1][
        "token"
    ]
    admin = call(base, "POST", "/api/v1/auth/token/", form={"username": "admin", "password": "demo"})[1]["token"]
    known = {v["id"] for v in versions(base, admin)}

    def fast_versions() -> list[dict[str, Any]]:
        return [v for v in versions(base, admin) if v["id"] not in known and v.get("method") == "fast"]

    answers = labels = 0
    due = time.monotonic()
    while labels < args.every and not fast_versions():
        status, item = call(base, "GET", "/api/v1/queue/next", annotator)
        if status == 204:
            raise SystemExit("The queue is empty.")
        suggestions = item["suggestions"] or scored(base, annotator, item)
        product_id = item["product"]["id"]
        call(
            base,
            "POST",
            "/api/v1/annotations",
            annotator,
            {
                "product": product_id,
                "category": suggestions[0]["category_id"],
                "product_version": item["product"]["version"],
                "client_key": f"try-fast-head-{time.time()}",
            },
        )
        answers += 1
        product = call(base, "GET", f"/api/v1/products/{product_id}/", annotator)[1]
        if product["is_verified"] and product["category_source"] == "annotation":
            labels, due = labels + 1, time.monotonic()
    print(f"{answers} answers made {labels} verified labels", flush=True)
    if labels < args.every:
        print("(a fast version came sooner: labels made before this script began counted towards it)", flush=True)
    while time.monotonic() - due < 300:
        fresh = fast_versions()
        if any(v.get("held_back") for v in fresh):
            raise SystemExit("the gate held the new fast version back (a better version serves)")
        serving = [v for v in fresh if v.get("is_serving")]
        if serving:
            print(f"fast v{serving[0]['number']} serving {time.monotonic() - due:.0f} s after the last of those labels")
            return
        time.sleep(1)
    raise SystemExit("no fast version serving 300 s after the last label (is the worker running?)")


if __name__ == "__main__":
    main()
