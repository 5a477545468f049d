"""What a browser sends and what it would load from a page."""

from html.parser import HTMLParser

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def links(page: str) -> list[str]:
    """Every ``src`` and ``href`` of ``page``: what it loads and what it links to."""
    parser = _Links()
    parser.feed(page)
    return parser.urls
