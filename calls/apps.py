from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Outbound calls"

    def ready(self) -> None:
        import calls.engine.wakeup  # noqa: F401  # connects its signal: a queued task wakes the workers
        from calls.roles import ensure_groups
        from calls.rollups import ensure_tallies

        post_migrate.connect(ensure_groups, sender=self)
        post_migrate.connect(ensure_tallies, sender=self)
