"""The REST API for other systems, at /api/v1/ (see site.py).

Built with django-ninja: a well-kept, typed library whose pydantic schemas validate each body and
generate the OpenAPI 3.1 schema from the code itself (/api/v1/openapi.json, read by people at
/api/v1/docs). The rules are the pages' own: each operation fills the form the page uses."""
