"""Against a running `make demo`: the annotator answers items through the API (each with its top suggestion, as a
hurried annotator would) until a fast version exists, then this times how long it takes to serve.

    python docs/try_fast_head.py [--url http://127.0.0.1:8000]

Prints how many answers it took (MLCORE_FAST_HEAD_EVERY verified labels; items the queue holds for a second
annotator are not verified by one answer) and the seconds from the last answer to the fast version serving.
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
    return listed["results"] if isinstance(listed, dict) else listed


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
    base = parser.parse_args().url
    annotator = call(base, "POST", "/api/v1/auth/token/", form={"username": "annotator", "password": "demo"})[1][
        "token"
    ]
    admin = call(base, "POST", "/api/v1/auth/token/", form={"username": "admin", "password": "demo"})[1]["token"]
    known = {v["id"] for v in versions(base, admin)}
    answers, last = 0, time.monotonic()
    while answers < 100:
        fresh = [v for v in versions(base, admin) if v["id"] not in known and v.get("method") == "fast"]
        if fresh:
            break
        status, item = call(base, "GET", "/api/v1/queue/next", annotator)
        if status == 204:
            raise SystemExit("The queue is empty.")
        suggestions = item["suggestions"] or scored(base, annotator, item)
        call(
            base,
            "POST",
            "/api/v1/annotations",
            annotator,
            {
                "product": item["product"]["id"],
                "category": suggestions[0]["category_id"],
                "product_version": item["product"]["version"],
                "client_key": f"try-fast-head-{time.time()}",
            },
        )
        answers, last = answers + 1, time.monotonic()
        time.sleep(0.5)  # the policy counts verified labels on commit; no need to race it
    while time.monotonic() - last < 120:
        fresh = [v for v in versions(base, admin) if v["id"] not in known and v.get("method") == "fast"]
        if any(v.get("held_back") for v in fresh):
            raise SystemExit(f"{answers} answers; the gate held the new fast version back (a better one serves)")
        serving = [v for v in fresh if v.get("is_serving")]
        if serving:
            print(
                f"{answers} answers; fast v{serving[0]['number']} serving "
                f"{time.monotonic() - last:.0f} s after the last"
            )
            return
        time.sleep(1)
    raise SystemExit(f"{answers} answers; no fast version serving 120 s after the last one (is the worker running?)")


if __name__ == "__main__":
    main()
