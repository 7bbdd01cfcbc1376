"""The API's human docs page (/api/v1/docs) in a browser: Swagger UI from the portal's own static
files, every operation listed, nothing refused by the Content Security Policy."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_api_docs_page_lists_every_operation_without_a_csp_refusal(page):
    refused: list[str] = []
    page.on(
        "console", lambda message: refused.append(message.text) if message.type == "error" else None
    )

    page.goto("/api/v1/docs")

    page.locator(".opblock").first.wait_for()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/calls" in paths and "/api/v1/campaigns/{campaign_id}/{action}" in paths
    assert not [text for text in refused if "Content Security Policy" in text]
