from __future__ import annotations

import math

import numpy as np
import pytest

from replyassets.scorers.toxicity import (
    DetoxifyScorer,
    ProfanityCheckScorer,
    ToxicityScorer,
    make_toxicity_scorer,
)
from replyassets_tests.validate.conftest import build_tiny_detoxify_checkpoint


def test_profanity_check_scores_offensive_text_higher(profanity_scorer):
    scores = profanity_scorer.score(["you are a fucking idiot, shut up", "thanks, the benchmark helped a lot", ""])
    assert scores.shape == (3,) and scores.dtype == np.float64
    assert ((scores >= 0) & (scores <= 1)).all()
    assert scores[0] > 0.5 > scores[1]
    assert isinstance(profanity_scorer, ToxicityScorer)
    assert profanity_scorer.score([]).shape == (0,)


def test_detoxify_real_code_path_with_a_test_built_checkpoint(tmp_path):
    ckpt, hf = build_tiny_detoxify_checkpoint(tmp_path, toxicity_bias=3.0)
    scorer = make_toxicity_scorer("detoxify", checkpoint=str(ckpt), huggingface_config_path=str(hf))
    assert isinstance(scorer, DetoxifyScorer) and isinstance(scorer, ToxicityScorer)
    texts = ["you are an idiot", "great post love this", "", "x" * 500] + ["code bug"] * 40  # > one batch
    scores = scorer.score(texts)
    assert scores.shape == (len(texts),) and scores.dtype == np.float64
    assert ((scores >= 0) & (scores <= 1)).all()
    # the toxicity head (bias +3), not one of the five others (bias -3)
    assert np.allclose(scores, 1 / (1 + math.exp(-3.0)), atol=1e-4)
    one = scorer.score(["single text"])
    assert one.shape == (1,)


def test_detoxify_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Detoxify checkpoint not found"):
        DetoxifyScorer(checkpoint=str(tmp_path / "nope.ckpt"))
    ckpt, _ = build_tiny_detoxify_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="huggingface_config_path is not a folder"):
        DetoxifyScorer(checkpoint=str(ckpt), huggingface_config_path=str(tmp_path / "missing"))
    bad = tmp_path / "bad.ckpt"
    import torch

    torch.save({"state_dict": {}}, bad)
    with pytest.raises(RuntimeError, match="could not load Detoxify"):
        DetoxifyScorer(checkpoint=str(bad))


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_factory_names():
    assert isinstance(make_toxicity_scorer("local"), ProfanityCheckScorer)
    assert make_toxicity_scorer("profanity-check").name == "profanity-check"
    with pytest.raises(ValueError, match="unknown toxicity scorer"):
        make_toxicity_scorer("perspective")
