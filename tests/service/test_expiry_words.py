"""How long an environment may sleep before it expires, as the create form words it."""

from __future__ import annotations

import pytest

from web.pages import lifetime


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (7 * 86400, "7 days"),
        (86400, "1 day"),
        (36 * 3600, "36 hours"),
        (3600, "1 hour"),
        (90 * 60, "90 minutes"),
        (61, "1 minute"),
        (0, ""),
    ],
)
def test_lifetime_in_words(seconds: int, words: str) -> None:
    assert lifetime(seconds) == words
