"""Who may see what: login everywhere, groups and their permissions."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from calls.models import CallLog, IvrFlow
from tests.conftest import logged_in

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


@pytest.mark.parametrize("url", ["/catalogue/", "/calls/", "/calls/new/"])
def test_an_outsider_is_refused_portal_pages(outsider, url):
    assert logged_in(outsider).get(url).status_code == 403


def test_an_agent_cannot_manage_the_catalogue_in_the_admin(agent, supervisor):
    agent.is_staff = True
    agent.save()
    assert logged_in(agent).get("/admin/calls/ivrflow/add/").status_code == 403
    assert logged_in(supervisor).get("/admin/calls/ivrflow/add/").status_code == 200


def test_seed_demo_is_idempotent(db, capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    counts = [m.objects.count() for m in (IvrFlow, CallLog)]
    call_command("seed_demo")
    second = capsys.readouterr().out
    assert [m.objects.count() for m in (IvrFlow, CallLog)] == counts
    assert "Demo login: demo / " in first
    assert "Demo login: demo / " not in second  # the password is printed once
    flow = IvrFlow.objects.get(flow_id="24")
    assert flow.variables == ["Name", "otp"]


def test_seed_demo_makes_a_flow_with_name_and_otp_and_both_audio_kinds(db):
    from calls.models import AudioAsset, Bridge

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Bridge.objects.count() >= 2
    assert AudioAsset.objects.exclude(sound_id="").exists()
    assert AudioAsset.objects.filter(url__startswith="https://").exists()
    assert (
        IvrFlow.objects.filter(template__contains="{otp}")
        .filter(template__contains="{Name}")
        .exists()
    )
