"""The two staff roles. Groups are (re)made after every migrate so permissions never drift."""

from django.contrib.auth.models import Group, Permission

AGENT_PERMISSIONS = [
    "add_calllog",
    "view_calllog",
    "view_bridge",
    "view_ivrflow",
    "view_audioasset",
    "view_campaign",
]
SUPERVISOR_PERMISSIONS = (
    AGENT_PERMISSIONS
    + [
        f"{action}_{model}"
        for model in ("bridge", "ivrflow", "audioasset", "donotcall", "campaign")
        for action in ("add", "change", "delete")
    ]
    + ["view_donotcall"]
)
ROLES = {"Agents": AGENT_PERMISSIONS, "Supervisors": SUPERVISOR_PERMISSIONS}


def ensure_groups(**kwargs: object) -> None:
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="calls", codename__in=codenames)
        )
