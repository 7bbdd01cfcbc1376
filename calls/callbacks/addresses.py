"""Where a callback may go. Only http(s) URLs to public addresses: a target that resolves to
loopback, a private network, link-local (the cloud's metadata service) or any other address that
is not global is refused, unless OBD_CALLBACKS_ALLOW_PRIVATE says the portal's own network is a
fair target (tests, a receiver on the same host). The check is made on the address the sender
then connects to (transport.py), not only on the name typed in."""

import ipaddress
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

MAX_URL = 2000
SCHEMES = frozenset({"http", "https"})


class Refused(Exception):
    """A target the portal will not post to; the message says why, in words."""


def is_public(address: str) -> bool:
    """True for a global unicast address (an IPv4 address mapped into IPv6 is judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_address(host: str, address: str) -> None:
    """Refuse `address` (what `host` resolved to) unless it is public or private ones are
    allowed."""
    if settings.OBD_CALLBACKS_ALLOW_PRIVATE or is_public(address):
        return
    raise Refused(f"{host} resolves to {address}, which is not a public address")


def split_url(url: str) -> SplitResult:
    """The URL's parts, or Refused saying what is wrong with it: length, characters, scheme,
    credentials, host, port."""
    if len(url) > MAX_URL:
        raise Refused(f"The URL is longer than {MAX_URL} characters.")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise Refused("The URL may not hold spaces or control characters.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise Refused("Only http:// and https:// URLs are allowed.")
    if parts.username is not None or parts.password is not None:
        raise Refused("The URL may not hold a user name or password.")
    if not parts.hostname:
        raise Refused("The URL has no host.")
    try:
        parts.port  # noqa: B018 (read for its check: a port out of range raises)
    except ValueError:
        raise Refused("The URL's port is not a number from 1 to 65535.") from None
    return parts


def validate_callback_url(url: str) -> None:
    """At registration: a well-formed http(s) URL, not to a private address typed as such. A name
    is checked again each time it is resolved to be posted to."""
    try:
        parts = split_url(url)
        host = parts.hostname or ""
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return  # a name: checked where it is resolved
        check_address(host, host)
    except Refused as refused:
        raise ValidationError(str(refused)) from None
