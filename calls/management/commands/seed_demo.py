"""Demo catalogue and a demo agent. Safe to run again: nothing is duplicated."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from calls.models import AudioAsset, Bridge, IvrFlow

BRIDGES = [("918068287602", "Bengaluru support line"), ("914066554433", "Hyderabad collections")]
FLOWS = [
    ("24", "Login OTP", "Hello {Name}, your otp for login is {otp}"),
    (
        "31",
        "Delivery reminder",
        "Hi {Name}, your order {order_id} arrives on {date}. Press 1 to confirm.",
    ),
    ("23", "Welcome call", "Welcome to Acme. Thank you for choosing us."),
]
AUDIO = [
    ("Payment reminder (sound)", "39888925-718e-43bb-a8b1-d4a3c0de0001", ""),
    ("Holiday notice (URL)", "", "https://cdn.example.com/audio/holiday-notice.mp3"),
]
DEMO_USER = "demo"


class Command(BaseCommand):
    help = "Create demo bridges, flows, audio and a demo staff user (idempotent)."

    def handle(self, *args: str, **options: object) -> None:
        for number, label in BRIDGES:
            Bridge.objects.get_or_create(number=number, defaults={"label": label})
        for flow_id, name, template in FLOWS:
            IvrFlow.objects.get_or_create(
                flow_id=flow_id, defaults={"name": name, "template": template}
            )
        for name, sound_id, url in AUDIO:
            AudioAsset.objects.get_or_create(name=name, defaults={"sound_id": sound_id, "url": url})
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_USER, defaults={"is_staff": True, "first_name": "Demo"}
        )
        user.groups.add(Group.objects.get(name="Supervisors"))
        if created:
            password = secrets.token_urlsafe(9)
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(
                self.style.SUCCESS(f"Demo login: {DEMO_USER} / {password}  (shown once)")
            )
        else:
            self.stdout.write(
                f"Demo login: {DEMO_USER} (password shown when it was created; "
                f"reset it with: python manage.py changepassword {DEMO_USER})"
            )
        self.stdout.write("Demo catalogue ready.")
