from datetime import datetime
from datetime import timezone as fixed_offset

from django import template
from django.utils import dateformat, timezone
from django.utils.formats import get_format

register = template.Library()


@register.filter
def moment(value: object, name: str = "DATETIME_FORMAT") -> str:
    """`{{ call.created_at|moment }}`, `{{ …|moment:"SHORT_DATETIME_FORMAT" }}`: an instant in
    the reader's zone as the portal writes it, with the zone's abbreviation even in the hour a
    clock change repeats (01:30 EDT, then 01:30 EST), where Django's `T` writes nothing."""
    if not isinstance(value, datetime):
        return ""  # as Django's |date does with what is not a date: never a 500
    return written(timezone.localtime(value), get_format(name))


def written(local: datetime, format_string: str) -> str:
    """`moment` of an instant already in the reader's zone, in a format already looked up (a
    page of rows looks it up once)."""
    offset, abbreviation = local.utcoffset(), local.tzname()
    if offset is None or abbreviation is None:
        return dateformat.format(local, format_string)
    # A fixed offset is never ambiguous, and it carries the name the zone gives this instant.
    named = fixed_offset(offset, zone_abbreviation(abbreviation, local.tzinfo))
    return dateformat.format(local.astimezone(named), format_string)


def zone_abbreviation(abbreviation: str, zone: object) -> str:
    """What a reader recognises: the zone's abbreviation (IST, EST), or, where the zone has none
    and the database writes a bare offset such as "+04" (Asia/Dubai), the zone's place name."""
    key = getattr(zone, "key", None)  # a ZoneInfo's name ("Asia/Dubai")
    # Etc/GMT+4's sign is POSIX's, the reverse of what it reads: its offset (-04) says it right.
    if abbreviation[:1] not in "+-" or not isinstance(key, str) or key.startswith("Etc/"):
        return abbreviation
    return zone_name(key.rsplit("/", 1)[-1])


def zone_name(name: str) -> str:
    """A zone's name as people write it: "America/New York", not the database's New_York."""
    return name.replace("_", " ")
