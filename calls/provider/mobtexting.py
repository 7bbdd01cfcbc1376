"""The real provider: Mobtexting's REST API over one keep-alive requests.Session."""

import json
import logging
import os
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests
from django.conf import settings

from calls.models import ProviderListRead
from calls.provider.base import (
    GatewayError,
    Payload,
    ProviderPage,
    RateLimited,
    Row,
    SendResult,
    parse_send_response,
    reason_of,
    rejection_message,
    transport_failure,
)
from calls.provider.listing import read_object, read_page
from calls.provider.recordings import days_around, pick_recording

# Fifteen recordings a page: a day's first 300 recordings are searched for a call's.
RECORDING_PAGES = 20

_sessions: dict[str, requests.Session] = {}
logger = logging.getLogger(__name__)


def _session_for(base_url: str) -> requests.Session:
    """One keep-alive session per provider base URL and process. requests' adapters retry
    nothing by default (max_retries=0), which is what a non-idempotent POST needs.

    The environment's proxy and CA bundle are read once, here: left to requests (`trust_env`),
    they are read again at every request, with ~/.netrc, whose login would replace our
    Authorization header."""
    if base_url not in _sessions:
        session = requests.Session()
        session.proxies = requests.utils.get_environ_proxies(base_url)
        session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        session.trust_env = False
        _sessions[base_url] = session
    return _sessions[base_url]


class MobtextingGateway:
    is_sandbox = False

    def __init__(self, base_url: str, token: str, timeout: tuple[float, float] = (5, 15)) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = timeout
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        self.session = _session_for(self.base_url)

    def send(self, payload: Payload) -> SendResult:
        url = self.base_url + "outgoing/send"
        try:
            response = self.session.post(
                url, data=json.dumps(payload), headers=self._headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            return transport_failure(exc)
        return parse_send_response(
            response.status_code, response.text, response.headers.get("Retry-After")
        )

    def call_status(self, **query: str) -> bytes:
        """GET outgoing/callstatus by `id` (the provider's call id) or `mobile`: the raw JSON."""
        try:
            response = self.session.get(
                self.base_url + "outgoing/callstatus",
                params=query,
                headers=self._headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise GatewayError(f"status look-up failed ({reason_of(exc)})") from None
        if response.status_code == 429:
            raise RateLimited(
                "status look-up answered HTTP 429 (too many requests)",
                response.headers.get("Retry-After"),
            )
        if response.status_code != 200:
            raise GatewayError(f"status look-up answered HTTP {response.status_code}")
        return response.content

    def recording_link(self, to: str, bridge: str, started_at: datetime) -> str:
        """A fresh link to a call's recording, from GET voice/recordings (the webhook's link
        dies two hours after the call; the list's links last an hour). Pages read: bounded.
        Rows that could not be read are logged and kept for /healthz."""
        zone = ZoneInfo(settings.OBD_PROVIDER_TIMEZONE)
        params: dict[str, str | int] = {"datetime[r.created_at]": days_around(started_at, zone)}
        rows = unreadable = 0
        link: str | None = None
        for page in range(1, RECORDING_PAGES + 1):
            response = self._request("GET", "voice/recordings", params={**params, "page": page})
            answer = read_page(response.status_code, response.text, "recordings list")
            pick = pick_recording(
                answer.rows, to=to, bridge=bridge, started_at=started_at, zone=zone
            )
            rows += len(answer.rows) + len(answer.junk)
            unreadable += pick.unreadable + len(answer.junk)
            link = pick.link
            if link or not answer.more:
                break
        ProviderListRead.objects.note(
            ProviderListRead.Name.RECORDINGS,
            rows=rows,
            unreadable=unreadable,
            complete=bool(link) or not answer.more,
        )
        if unreadable:
            logger.warning("recordings list unreadable=%s of read=%s", unreadable, rows)
        if link and self._headers["Authorization"].removeprefix("Bearer ") in link:
            raise GatewayError("The provider's recording link holds our API token: not used.")
        if link:
            return link
        unread = f" {unreadable} of its rows could not be read." if unreadable else ""
        raise GatewayError(
            "The provider lists no recording of this call (it keeps recordings 60 days)." + unread
        )

    def upload_sound(self, name: str, filename: str, content: bytes, content_type: str) -> str:
        """POST voice/sounds (multipart); the provider's sound id for `audio` on later calls."""
        headers = {k: v for k, v in self._headers.items() if k != "Content-Type"}
        try:
            response = self.session.post(
                self.base_url + "voice/sounds",
                data={"name": name},
                files={"audio": (filename, content, content_type)},
                headers=headers,
                timeout=(self.timeout[0], max(self.timeout[1], 60)),
            )
        except requests.RequestException as exc:
            raise GatewayError(
                f"The upload did not reach the provider ({reason_of(exc)})."
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        sound_id = (
            data.get("data", {}).get("id")
            if isinstance(data, dict) and isinstance(data.get("data"), dict)
            else None
        )
        if response.status_code >= 400 or not sound_id:
            raise GatewayError(rejection_message(response.status_code, data, what="sound"))
        return str(sound_id)

    def unsubscribers(self, page: int) -> ProviderPage:
        """GET outgoing/suppressions/unsubscribers: one page of the voice opt-outs."""
        response = self._request(
            "GET", "outgoing/suppressions/unsubscribers", params={"page": page}
        )
        return read_page(response.status_code, response.text, "unsubscribers list")

    def webhooks(self, page: int) -> ProviderPage:
        response = self._request("GET", "developer/webhooks", params={"page": page})
        return read_page(response.status_code, response.text, "webhooks list")

    def save_webhook(self, fields: Row, webhook_id: str = "") -> Row:
        """POST developer/webhooks (create) or PUT developer/webhooks/{id} (edit)."""
        if webhook_id:
            path = "developer/webhooks/" + quote(webhook_id, safe="")
            response = self._request("PUT", path, body=fields)
        else:
            response = self._request("POST", "developer/webhooks", body=fields)
        return read_object(response.status_code, response.text, "webhook")

    def subscriptions(self, page: int) -> ProviderPage:
        response = self._request("GET", "developer/subscriptions", params={"page": page})
        return read_page(response.status_code, response.text, "subscriptions list")

    def subscribe(self, event: str, webhook_id: str) -> Row:
        body: Row = {"event": event, "identity": "all", "webhook_id": webhook_id}
        response = self._request("POST", "developer/subscriptions", body=body)
        return read_object(response.status_code, response.text, "subscription")

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        body: Row | None = None,
    ) -> requests.Response:
        """One request to the provider's lists and management API, never retried (a POST may
        have been accepted); no answer at all is a GatewayError naming the request."""
        try:
            return self.session.request(
                method,
                self.base_url + path,
                params=params,
                data=json.dumps(body) if body is not None else None,
                headers=self._headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise GatewayError(
                f"No answer from the provider to {method} {path} ({reason_of(exc)})."
            ) from None
