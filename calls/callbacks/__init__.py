"""Signed callbacks to the systems around the portal: which targets are allowed (addresses.py),
how one is posted, pinned to the address checked (transport.py), and the engine's job that
sends what waits in the outbox (delivery.py). The outbox itself is in calls/models/outbox.py."""
