"""/docs and /redoc load every asset from this server: they work on an air-gapped host."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def _asset_urls(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_name_no_external_host_and_their_assets_answer(
    client: TestClient, page: str
) -> None:
    r = client.get(page)
    assert r.status_code == 200
    urls = _asset_urls(r.text)
    assert any(u.endswith(".js") for u in urls), urls
    assert [u for u in urls if urlsplit(u).netloc] == []  # nothing from a CDN or another host
    assert "cdn.jsdelivr" not in r.text
    assert "unpkg.com" not in r.text
    assert "fonts.googleapis" not in r.text
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
    if page == "/docs":
        assert '"validatorUrl": null' in r.text  # no call to validator.swagger.io
