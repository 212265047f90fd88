"""Share links in the page: the site address links carry, QR codes, and links from other sites.

Pure Python (no `js`). The link format itself is the core's (`hushdrop.protocol.codes`); this module
only decides which base URL the page puts in front of it and how it is drawn.
"""

from __future__ import annotations

from ..protocol.codes import Code
from ..protocol.errors import CodeFormatError
from .errors import PageError
from .messages import t


class OtherSiteError(PageError, CodeFormatError):
    """A link made by another Hushdrop site."""

    kind = "bad-code"


def site_url(origin: str, pathname: str) -> str:
    """The page's base URL: origin plus the directory of the page (`/a/index.html` → `/a/`)."""
    directory = pathname[: pathname.rfind("/") + 1] or "/"
    return origin + directory


def check_site(code: Code, origin: str) -> None:
    """Refuse a link made by another Hushdrop site: its room lives on that site's relay."""
    if code.site is not None and code.site.rstrip("/") != origin.rstrip("/"):
        raise OtherSiteError(t("error.other-site", site=code.site))


def qr_data_uri(text: str) -> str:
    """An SVG QR code of `text` as a data: URI (allowed by the page's CSP, unlike inline SVG
    styles)."""
    import segno  # imported on first use: it is only needed once a link exists

    code = segno.make(text, error="m", micro=False)
    return code.svg_data_uri(scale=4, border=2, dark="#111111", light="#ffffff")
