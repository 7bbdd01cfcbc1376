"""A provider account for the FakeProvider to play: webhooks, subscriptions and unsubscribers
kept as the management API keeps them, listed in pages of 15 with Laravel's `links` and `meta`.

`faults` answers chosen requests differently: a key `"POST developer/subscriptions"` maps to a
list of replies used one per matching request (an int is a status with a plain body, "slow"
sleeps past the client's read timeout *after* the change was made, "garbage" is not JSON).
"""

import json
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

PER_PAGE = 15
OK = {"Content-Type": "application/json"}


@dataclass
class ProviderAccount:
    webhooks: dict[str, dict] = field(default_factory=dict)
    subscriptions: list[dict] = field(default_factory=list)
    unsubscribers: list[dict] = field(default_factory=list)
    faults: dict[str, list] = field(default_factory=dict)
    slow_seconds: float = 1.5

    def __call__(self, request) -> tuple[int, dict, bytes]:
        parts = urlsplit(request.path)
        path = parts.path.removeprefix("/api/v2/")
        route = f"{request.method} {path.rsplit('/', 1)[0] if request.method == 'PUT' else path}"
        fault = self.faults.get(route) and self.faults[route].pop(0)
        if isinstance(fault, int):
            return fault, {"Content-Type": "text/plain"}, b"Server Error"
        if fault == "garbage":
            return 200, {"Content-Type": "text/html"}, b"<html>maintenance</html>"
        page = int(parse_qs(parts.query).get("page", ["1"])[0])
        status, body = self._answer(request, route, path, page)
        if fault == "slow":  # the change is made, the answer comes too late
            time.sleep(self.slow_seconds)
        return status, OK, json.dumps(body).encode()

    def _answer(self, request, route: str, path: str, page: int) -> tuple[int, object]:
        if route == "GET outgoing/suppressions/unsubscribers":
            return 200, listed(self.unsubscribers, page)
        if route == "GET developer/webhooks":
            return 200, listed([masked(w) for w in self.webhooks.values()], page)
        if route == "POST developer/webhooks":
            fields = request.json()
            hook = {"id": str(uuid.uuid4()), "status": "1", **fields}
            self.webhooks[hook["id"]] = hook
            return 200, {"status": "OK", "code": 200, "message": "Created", "data": masked(hook)}
        if route == "PUT developer/webhooks":
            hook_id = unquote(path.rsplit("/", 1)[1])
            if hook_id not in self.webhooks:
                return 404, {"message": "Not found"}
            self.webhooks[hook_id].update(request.json())
            return 200, {"status": "OK", "code": 200, "data": masked(self.webhooks[hook_id])}
        if route == "GET developer/subscriptions":
            return 200, listed(self.subscriptions, page)
        if route == "POST developer/subscriptions":
            row = {"id": len(self.subscriptions) + 1, "payload": [], **request.json()}
            self.subscriptions.append(row)
            return 200, {"status": "OK", "code": 200, "message": "Subscription Saved", "data": row}
        return 404, {"message": f"no route {route}"}


def listed(rows: list[dict], page: int) -> dict:
    last = max(1, -(-len(rows) // PER_PAGE))
    chunk = rows[(page - 1) * PER_PAGE : page * PER_PAGE]
    more = page < last
    return {
        "status": "OK",
        "code": 200,
        "data": chunk,
        "links": {"next": f"?page={page + 1}" if more else None},
        "meta": {"current_page": page, "last_page": last, "per_page": PER_PAGE},
    }


def masked(hook: dict) -> dict:
    """As the provider shows a webhook: secret and token starred out."""
    shown = {k: v for k, v in hook.items() if k not in ("secret", "token")}
    return shown | {"secret": "*****", "verification_code": "*****"}
