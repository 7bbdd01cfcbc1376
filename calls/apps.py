from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Outbound calls"

    def ready(self) -> None:
        from calls.roles import ensure_groups

        post_migrate.connect(ensure_groups, sender=self)
