"""The seed_demo command (calls/management/commands/seed_demo.py)."""

from django.core.management import call_command

from calls.models import AudioAsset, Bridge, CallLog, IvrFlow


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
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Bridge.objects.count() >= 2
    assert AudioAsset.objects.exclude(sound_id="").exists()
    assert AudioAsset.objects.filter(url__startswith="https://").exists()
    assert (
        IvrFlow.objects.filter(template__contains="{otp}")
        .filter(template__contains="{Name}")
        .exists()
    )
