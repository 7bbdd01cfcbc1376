"""Which gateway this process talks to: Mobtexting when MOBTEXTING_API_TOKEN is set, else the
sandbox, which answers like the provider and later delivers a realistic webhook through the worker."""

from django.conf import settings

from calls.provider.base import Gateway
from calls.provider.mobtexting import MobtextingGateway
from calls.provider.sandbox import SandboxGateway


def get_gateway() -> Gateway:
    if settings.MOBTEXTING_API_TOKEN:
        return MobtextingGateway(
            settings.MOBTEXTING_API_URL,
            settings.MOBTEXTING_API_TOKEN,
            timeout=(settings.MOBTEXTING_CONNECT_TIMEOUT, settings.MOBTEXTING_READ_TIMEOUT),
        )
    return SandboxGateway()
