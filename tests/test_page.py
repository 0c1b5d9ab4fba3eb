"""The browser page in process: which model it opens (the page itself runs in Chromium: test_browser.py)."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("query, status", [("?model=titanic", 200), ("?model=pima-diabetes&version=1", 200),
                                           ("?model=nope", 404), ("?version=x", 400), ("?version=7", 404)])
def test_the_page_opens_the_model_a_query_names(client, query, status):
    answer = client.get(f"/{query}")
    assert answer.status_code == status
    if status == 200:
        assert 'id="model-choice"' in answer.get_data(as_text=True)
