"""Fixtures for the validation tests: real scorers (built once) and a tiny Detoxify checkpoint."""

from __future__ import annotations

import pandas as pd
import pytest

from replyassets.settings import ValidationSettings


@pytest.fixture(scope="session")
def language_scorer():
    from replyassets.scorers.language import LanguageScorer

    return LanguageScorer()


@pytest.fixture(scope="session")
def profanity_scorer():
    from replyassets.scorers.toxicity import ProfanityCheckScorer

    return ProfanityCheckScorer()


@pytest.fixture
def settings() -> ValidationSettings:
    return ValidationSettings()


GOOD_REPLY = "Debugging async issues in Node requires careful attention to the event loop and promise chains"


def make_pairs(replies, **overrides) -> pd.DataFrame:
    rows = []
    for i, reply in enumerate(replies):
        row = {
            "query": "ai-agents", "source": "replay", "tweet_id": f"t{i}",
            "tweet": "What is the hardest bug you ever fixed? #Debugging",
            "tweet_author": "alice", "tweet_author_followers": 5000, "tweet_likes": 500,
            "tweet_retweets": 50, "tweet_created_at": "2025-09-29T21:24:45",
            "reply_id": f"r{i}", "reply": reply, "reply_author": f"bob{i}",
            "reply_author_followers": 1000, "reply_likes": 10, "reply_retweets": 1,
            "reply_created_at": "2025-09-29T22:24:45", "reply_time_diff_seconds": 3600,
            "has_media": False, "has_urls": False, "lang": "en",
            "collected_at": "2025-10-01T00:00:00",
        }
        row.update(overrides)
        rows.append(row)
    return pd.DataFrame(rows)


def build_tiny_detoxify_checkpoint(folder, toxicity_bias: float = 3.0):
    """A real Detoxify-format checkpoint around a tiny BERT (config + tokenizer in ``folder/hf``).

    The classifier ignores its input (zero weights) and its biases are +toxicity_bias for the
    ``toxic`` class and -3 for the five others, so the toxicity head is recognisable.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    hf = folder / "hf"
    hf.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += ["the", "a", "you", "are", "idiot", "great", "post", "love", "this", "stupid", "hate", "thanks", "code", "bug"]
    vocab += list("abcdefghijklmnopqrstuvwxyz")
    (hf / "vocab.txt").write_text("\n".join(vocab) + "\n")
    classes = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                        num_labels=len(classes))
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([toxicity_bias] + [-3.0] * 5))
    config.save_pretrained(hf)
    BertTokenizer(str(hf / "vocab.txt")).save_pretrained(hf)
    checkpoint = {
        "config": {
            "arch": {"args": {"model_type": str(hf), "model_name": "BertForSequenceClassification",
                              "tokenizer_name": "BertTokenizer", "num_classes": len(classes)}},
            "dataset": {"args": {"classes": classes}},
        },
        "state_dict": model.state_dict(),
    }
    path = folder / "tiny-detoxify.ckpt"
    torch.save(checkpoint, path)
    return path, hf
