"""Logging in (obdportal/urls.py, calls/views.py): every portal page needs it, the log-in pages
are open, and someone in no group is refused."""

import pytest
from django.urls import reverse

from tests.helpers.portal import logged_in

PORTAL_URLS = ["/", "/catalogue/", "/calls/", "/calls/new/", "/calls/1/"]


@pytest.mark.parametrize("url", PORTAL_URLS)
def test_every_portal_page_sends_an_anonymous_visitor_to_log_in(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_the_login_page_and_admin_login_are_open(client, db):
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/admin/login/").status_code == 200


def test_a_demo_user_can_log_in_with_a_password(client, agent):
    response = client.post("/accounts/login/", {"username": "agent", "password": "pw-agent"})
    assert response.status_code == 302
    assert client.get("/calls/").status_code == 200


@pytest.mark.parametrize("url", ["/catalogue/", "/calls/", "/calls/new/"])
def test_an_outsider_is_refused_portal_pages(outsider, url):
    assert logged_in(outsider).get(url).status_code == 403


def test_an_outsider_is_offered_no_link_to_a_page_that_refuses_them(outsider):
    html = logged_in(outsider).get("/preferences/").text

    nav = html.split('aria-label="Main"', 1)[1].split("</nav>", 1)[0]
    assert "<a " not in nav


@pytest.mark.parametrize(
    "url",
    [
        "/campaigns/sample.csv?flow=%C2%B2",  # ² is a digit to str.isdigit, not to int()
        "/campaigns/sample.csv?flow=99999999999999999999999",
        "/calls/?before=%C2%B2",
        "/calls/?after=99999999999999999999999",
        "/calls/new/?again=%C2%B2",
        "/calls/new/?flow=%C2%B2",
        "/calls/?campaign=99999999999999999999999",
    ],
)
def test_hostile_ids_in_a_link_never_make_a_500(supervisor, url):
    assert logged_in(supervisor).get(url).status_code in (200, 404)


def test_a_refusal_is_logged_in_one_line_without_a_traceback(outsider, caplog):
    with caplog.at_level("WARNING", logger="django.request"):
        assert logged_in(outsider).get("/calls/").status_code == 403

    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Forbidden (Permission denied): /calls/"
    assert record.exc_info is None and "Traceback" not in caplog.text
