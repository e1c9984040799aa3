"""Reading the stable HTML hooks of ../shared/CONTRACT.md out of a page or fragment."""

from __future__ import annotations

import re


def hook(html: str, element_id: str) -> dict[str, str]:
    """The ``data-*`` attributes of the element with ``element_id`` (without ``data-``)."""
    match = re.search(rf'<[^>]*\bid="{element_id}"([^>]*)>', html, re.DOTALL)
    assert match, f"no #{element_id} in {html[:300]!r}"
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', match.group(1)))
