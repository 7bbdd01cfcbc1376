"""The admin (calls/admin.py): rematching early webhook events, and the catalogue only for
those whose group may change it."""

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
