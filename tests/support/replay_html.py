"""The data a replay page (``tickwire replay DIR --html FILE``) carries."""

from __future__ import annotations

import json
import re


def page_data(html: str) -> dict:
    """The JSON the page embeds (its one ``replay-data`` script block), decoded."""
    blocks = re.findall(r'<script type="application/json" id="replay-data">(.*?)</script>', html, re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])
