"""Errors as RFC 9457 problem details (calls/api/problems.py), and hostile input: every field
from outside is refused in words, never with a 500."""

import json

import pytest
from django.test import Client

from calls.models import CallLog

pytestmark = pytest.mark.django_db


def post(api, body: bytes | str, content_type="application/json", **headers):
    return api.post("/api/v1/calls", body, content_type=content_type, headers=headers)


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def fields(body: dict) -> dict[str | None, str]:
    return {error["field"]: error["message"] for error in body["errors"]}


def test_a_wrong_type_names_the_field(api):
    body = problem(post(api, json.dumps({"bridge": "abc", "to": 5, "variables": [1]})), 422)

    assert set(fields(body)) == {"bridge", "to", "variables"}


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("to", "+91 88671\x0035123", "Null characters are not allowed."),
        ("name", "n" * 101, "Ensure this value has at most 100 characters (it has 101)."),
        ("to", "9" * 5000, "Ensure this value has at most 32 characters (it has 5000)."),
        ("audio_url", "javascript:alert(1)", "Only an http:// or https:// link can be played."),
        ("at", "tomorrow-ish", "Enter a valid date/time."),
        ("interval", 7, "Select a valid choice. 7 is not one of the available choices."),
    ],
)
def test_hostile_values_are_refused_in_the_forms_words(api, bridge, sound, field, value, words):
    call = {"bridge": bridge.pk, "to": "+91 88671 35123", "audio": sound.pk, field: value}

    body = problem(post(api, json.dumps(call)), 422)

    assert fields(body)[field] == words
    assert not CallLog.objects.exists()


def test_a_nul_in_a_variable_is_refused(api, bridge, otp_flow):
    call = {"bridge": bridge.pk, "to": "+91 88671 35123", "flow": otp_flow.pk}
    call["variables"] = {"Name": "A\x00", "otp": "1"}

    assert fields(problem(post(api, json.dumps(call)), 422)) == {
        "variables.Name": "Null characters are not allowed."
    }


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"\xff\xfe\x00", b"[" * 100_000, b'{"bridge": 1e999999}', b"", b"null"],
)
def test_an_unreadable_body_is_a_problem_never_a_500(api, raw):
    response = post(api, raw)

    assert response.status_code in (400, 413, 422)
    problem(response, response.status_code)


def test_a_deeply_nested_body_is_a_problem_never_a_500(api):
    deep = '{"bridge": 1, "to": "1", "variables": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001

    problem(post(api, deep), 400 if len(deep) < 256 * 1024 else 413)


def test_a_body_over_the_cap_is_refused_before_it_is_read(api, settings):
    settings.OBD_API_MAX_BODY = 1000

    body = problem(post(api, json.dumps({"name": "x" * 2000})), 413)

    assert "1000 bytes" in body["detail"]


def test_a_huge_id_is_refused_not_sent_to_the_database(api, bridge):
    assert "call_id" in fields(problem(api.get("/api/v1/calls/99999999999999999999"), 422))
    assert "bridge" in fields(problem(post(api, json.dumps({"bridge": 10**30, "to": "1"})), 422))


def test_a_form_encoded_body_is_refused(api, bridge):
    problem(post(api, "bridge=1&to=2", content_type="application/x-www-form-urlencoded"), 400)


def test_an_address_under_the_api_that_is_nothing_is_a_problem(api):
    problem(api.get("/api/v1/nothing/here"), 404)
    problem(Client().get("/api/v1/nothing"), 404)


def test_the_schema_and_its_docs_page_are_open_without_a_key():
    schema = Client().get("/api/v1/openapi.json")
    docs = Client().get("/api/v1/docs")

    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.1")
    post_calls = schema.json()["paths"]["/api/v1/calls"]["post"]
    assert "application/problem+json" in post_calls["responses"]["422"]["content"]
    assert any(p["name"] == "Idempotency-Key" for p in post_calls["parameters"])
    assert docs.status_code == 200 and b"swagger-ui" in docs.content
