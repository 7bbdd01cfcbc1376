"""Who may do what: every portal page and action, and the admin pages that matter, per role.

One table, one test. Each row is a URL and a method with what each kind of visitor gets:
an anonymous visitor is sent to log in, an outsider (logged in, in no group) is refused
everything, an agent places and reads calls (acting on their own only) and follows campaigns, a supervisor also runs
campaigns and uploads sounds, an admin may do everything. Being staff grants nothing by itself.
"""

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from calls.models import AuditEntry, CallLog, Campaign
from tests.helpers.portal import logged_in, text_of

# What a visitor gets.
OK = 200  # the page
DONE = "done"  # the action ran: redirected to its object, not to a login page
DENIED = 403
LOGIN = "login"  # redirected to the portal's login page
ADMIN_LOGIN = "admin login"  # the admin's own log-in page (logged in, but not staff)

ROLES = ["admin", "supervisor", "agent", "staff_agent", "outsider", "anonymous"]


def everyone_but_outsiders(agent: object, **more: object) -> dict:
    return {
        "admin": more.get("admin", OK),
        "supervisor": more.get("supervisor", OK),
        "agent": agent,
        "staff_agent": agent,
        "outsider": DENIED,
        "anonymous": LOGIN,
    }


AGENT_MAY_SEE = everyone_but_outsiders(OK)
SUPERVISOR_ONLY_PAGE = everyone_but_outsiders(DENIED)
SUPERVISOR_ONLY_ACTION = everyone_but_outsiders(DENIED, admin=DONE, supervisor=DONE)


def admin_page(supervisor: object) -> dict:
    """The admin sends people who are not staff to its own log-in page, refuses staff without
    the model's permission, and lets the rest in."""
    return {
        "admin": OK,
        "supervisor": supervisor,
        "agent": ADMIN_LOGIN,
        "staff_agent": DENIED,
        "outsider": ADMIN_LOGIN,
        "anonymous": LOGIN,
    }


MATRIX = [
    ("GET", "/", AGENT_MAY_SEE),
    ("GET", "/catalogue/", AGENT_MAY_SEE),
    ("GET", "/calls/", AGENT_MAY_SEE),
    ("GET", "/calls/new/", AGENT_MAY_SEE),
    ("GET", "/calls/{call}/", AGENT_MAY_SEE),
    ("GET", "/calls/export.csv", AGENT_MAY_SEE),
    ("GET", "/campaigns/", AGENT_MAY_SEE),
    ("GET", "/campaigns/new/", SUPERVISOR_ONLY_PAGE),
    ("GET", "/campaigns/{campaign}/", AGENT_MAY_SEE),
    ("GET", "/campaigns/{campaign}/set-aside.csv", AGENT_MAY_SEE),
    ("GET", "/campaigns/{campaign}/start/confirm/", SUPERVISOR_ONLY_PAGE),
    ("GET", "/campaigns/sample.csv", SUPERVISOR_ONLY_PAGE),
    ("GET", "/catalogue/sounds/upload/", SUPERVISOR_ONLY_PAGE),
    # Someone else's call (the portal's, here): an agent acts on their own only.
    ("POST", "/calls/{call}/retry/", SUPERVISOR_ONLY_ACTION),
    ("POST", "/campaigns/{campaign}/start/", SUPERVISOR_ONLY_ACTION),
    ("POST", "/campaigns/{campaign}/upload/", SUPERVISOR_ONLY_ACTION),
    # Raw webhook deliveries are for admins only, even for staff supervisors.
    ("GET", "/admin/calls/callevent/", admin_page(supervisor=DENIED)),
    ("GET", "/admin/calls/ivrflow/add/", admin_page(supervisor=OK)),
    ("GET", "/admin/calls/donotcall/", admin_page(supervisor=OK)),
]

CASES = [
    pytest.param(method, url, who, expected, id=f"{method} {url} as {who}")
    for method, url, expectations in MATRIX
    for who, expected in expectations.items()
]


def test_the_matrix_names_every_role_on_every_row():
    assert all(list(expectations) == ROLES for _, _, expectations in MATRIX)


@dataclass
class Portal:
    call: CallLog
    campaign: Campaign


@pytest.fixture
def portal(bridge, sound) -> Portal:
    """A call that was never sent (so it may be retried) and a draft campaign."""
    call = CallLog.objects.create(
        bridge=bridge, to="918867135123", audio=sound, status=CallLog.Status.ERROR
    )
    campaign = Campaign.objects.create(name="November", bridge=bridge, audio=sound, pace=2)
    return Portal(call, campaign)


@pytest.fixture
def staff_agent(agent):
    agent.is_staff = True
    agent.save(update_fields=["is_staff"])
    return agent


def client_for(request: pytest.FixtureRequest, who: str) -> Client:
    if who == "anonymous":
        return Client()
    return logged_in(request.getfixturevalue({"admin": "admin_user"}.get(who, who)))


def post_data(url: str) -> dict:
    if url.endswith("/upload/"):
        return {"csv_file": SimpleUploadedFile("numbers.csv", b"number\n+918867135124\n")}
    return {}


@pytest.mark.parametrize(("method", "url", "who", "expected"), CASES)
def test_each_role_gets_what_the_matrix_says(request, portal, method, url, who, expected):
    url = url.format(call=portal.call.pk, campaign=portal.campaign.pk)
    client = client_for(request, who)
    response = client.get(url) if method == "GET" else client.post(url, post_data(url))

    location = response.get("Location", "")
    if expected == LOGIN:
        assert response.status_code == 302
        assert location.startswith("/accounts/login/?next=")
    elif expected == ADMIN_LOGIN:
        assert response.status_code == 302
        assert location.startswith("/admin/login/?next=")
    elif expected == DONE:
        assert response.status_code == 302
        assert "login" not in location
        assert location in (portal.call.get_absolute_url(), portal.campaign.get_absolute_url())
    else:
        assert response.status_code == expected

    if method == "POST" and expected != DONE:
        # A refused action leaves no trace: nothing resent, started, imported or audited.
        assert not AuditEntry.objects.exists()
        assert CallLog.objects.get(pk=portal.call.pk).status == CallLog.Status.ERROR
        assert Campaign.objects.get(pk=portal.campaign.pk).status == Campaign.Status.DRAFT
        assert not portal.campaign.calls.exists()


# --- the groups themselves ------------------------------------------------------------------------


def test_the_groups_exist_with_their_permissions(db):
    agents = set(Group.objects.get(name="Agents").permissions.values_list("codename", flat=True))
    supervisors = set(
        Group.objects.get(name="Supervisors").permissions.values_list("codename", flat=True)
    )
    assert {"add_calllog", "view_calllog", "view_ivrflow"} <= agents
    assert not {"add_ivrflow", "change_bridge", "delete_audioasset"} & agents
    assert agents < supervisors
    assert {"add_ivrflow", "change_bridge", "delete_audioasset", "add_bridge"} <= supervisors
    assert "view_callevent" not in supervisors  # raw webhook events are for admins


def test_groups_survive_another_migrate(db):
    Group.objects.get(name="Agents").permissions.clear()
    call_command("migrate", verbosity=0)
    assert Group.objects.get(name="Agents").permissions.filter(codename="add_calllog").exists()


# --- what the 403 page says -----------------------------------------------------------------------


def test_the_403_page_names_the_missing_permission_and_who_has_it(agent):
    response = logged_in(agent).get("/campaigns/new/")

    assert response.status_code == 403
    said = text_of(response.content.decode())
    assert (
        "This page needs the permission “Can add campaign” (calls.add_campaign), which your "
        "account does not have. The Supervisors group has it: ask an administrator to add you."
    ) in said
    assert '<a href="/">Back to the dashboard</a>' in response.content.decode()


def test_the_403_page_never_links_back_to_a_page_that_refuses_too(outsider):
    response = logged_in(outsider).get("/")

    html = response.content.decode()
    assert response.status_code == 403
    assert "“Can view call” (calls.view_calllog)" in text_of(html)
    assert "The Agents and Supervisors groups have it" in text_of(html)
    main = html.split("<main", 1)[-1]
    assert 'href="/"' not in main  # no way back into the refusal
    assert "Another account may do this: Log out and log in with it." in text_of(main)
