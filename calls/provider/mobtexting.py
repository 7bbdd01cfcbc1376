"""The real provider: Mobtexting's REST API over one keep-alive requests.Session."""

import json

import requests

from calls.provider.base import (
    GatewayError,
    Payload,
    SendResult,
    parse_send_response,
    reason_of,
    rejection_message,
    transport_failure,
)

_sessions: dict[str, requests.Session] = {}


def _session_for(base_url: str) -> requests.Session:
    """One keep-alive session per provider base URL and process. requests' adapters retry
    nothing by default (max_retries=0), which is what a non-idempotent POST needs."""
    if base_url not in _sessions:
        _sessions[base_url] = requests.Session()
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
        if response.status_code != 200:
            raise GatewayError(f"status look-up answered HTTP {response.status_code}")
        return response.content

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
