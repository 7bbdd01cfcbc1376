"""The admin (calls/admin.py): rematching early webhook events, and the catalogue only for
those whose group may change it."""

import re

from calls.models import CallEvent
from tests.helpers.portal import logged_in
from tests.helpers.webhooks import decided_by, deliver, final_state, push


def test_the_admin_rematch_action_attaches_an_early_event_and_applies_its_outcome(
    provider_client, make_call, admin_client
):
    deliver(provider_client, push())
    call = make_call()

    response = admin_client.post(
        "/admin/calls/callevent/",
        {"action": "rematch", "_selected_action": [CallEvent.objects.get().pk]},
        follow=True,
    )

    assert "1 event(s) matched to a call." in response.text
    assert CallEvent.objects.get().call == call
    assert final_state(call) == decided_by(push(), attempts=1)
    assert not CallEvent.objects.filter(call=None).exists()


def test_an_agent_cannot_manage_the_catalogue_in_the_admin(agent, supervisor):
    agent.is_staff = True
    agent.save()
    assert logged_in(agent).get("/admin/calls/ivrflow/add/").status_code == 403
    assert logged_in(supervisor).get("/admin/calls/ivrflow/add/").status_code == 200


def test_the_admin_finds_a_call_by_its_number_or_its_provider_id_in_either_form(
    make_call, admin_client
):
    found = make_call(provider_id="3f2504e0-4f89-11d3-9a0c-0305e82c3301:1")
    other = make_call(provider_id="abc", to="918867135999")

    def listed(term: str) -> set[int]:
        response = admin_client.get("/admin/calls/calllog/", {"q": term})
        return {int(pk) for pk in re.findall(r"/admin/calls/calllog/(\d+)/change/", response.text)}

    assert listed("3f2504e0-4f89-11d3-9a0c-0305e82c3301") == {found.pk}
    assert listed("3F2504E0-4F89-11D3-9A0C-0305E82C3301:1") == {found.pk}
    assert listed("918867135999") == {other.pk}
    assert listed("nothing-like-it") == set()


def test_the_admin_names_the_portals_icon_so_browsers_do_not_ask_for_a_missing_one(admin_client):
    html = admin_client.get("/admin/").text

    icon = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', html)
    assert icon is not None and icon[1].endswith("favicon.svg")
