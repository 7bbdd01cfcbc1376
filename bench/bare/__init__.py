"""The limit for a Django door on this machine (bench/webhook_load.py): no apps, no middleware,
one view that INSERTs the body. Same database settings as the portal (SQLite's WAL and
IMMEDIATE, PostgreSQL's kept connections), so only Django's own request path is left."""
