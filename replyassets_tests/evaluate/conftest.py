from __future__ import annotations

import json

import pytest

from replyassets_tests.fakes.anthropic_server import FakeAnthropicServer


def data_of(body: dict) -> dict:
    """The JSON data object the judge sent between <data> tags."""
    content = body["messages"][0]["content"]
    assert content.count("<data>") == 1 and content.count("</data>") == 1, content
    blob = content.split("<data>\n", 1)[1].rsplit("\n</data>", 1)[0]
    return json.loads(blob)


def prefers_good(body: dict) -> str:
    """A content-based fake judge: the reply containing GOOD wins; a reply alone scores 8 if GOOD else 3."""
    d = data_of(body)
    if "reply_a" in d:
        a, b = "GOOD" in d["reply_a"], "GOOD" in d["reply_b"]
        w = "tie" if a == b else ("A" if a else "B")
        return json.dumps({"winner": w, "reason": "content"})
    return json.dumps({"score": 8 if "GOOD" in d["reply"] else 3, "reason": "content"})


@pytest.fixture
def fake_anthropic():
    with FakeAnthropicServer(responder=prefers_good) as srv:
        yield srv


@pytest.fixture
def make_judge(fake_anthropic):
    from replyassets.judges.anthropic_judge import AnthropicJudge

    def make(**kw):
        kw.setdefault("max_retries", 4)
        kw.setdefault("timeout", 5.0)
        return AnthropicJudge("claude-sonnet-4-6", api_key="sk-test-not-a-secret", base_url=fake_anthropic.base_url, **kw)

    return make
