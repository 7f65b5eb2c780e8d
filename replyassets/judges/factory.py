"""Build a judge named in EvaluationSettings (``judges``: offline | reward_model | anthropic); the
offline judge's length limits are the validation ones (ValidationSettings). The reward-model judge
needs its trained artifact and the embedder: ``replyassets.judges.reward_model``."""

from __future__ import annotations

from replyassets.judges.base import Judge
from replyassets.settings import EvaluationSettings, ValidationSettings


def build_judge(
    settings: EvaluationSettings,
    validation: ValidationSettings,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    kind: str | None = None,
) -> Judge:
    """``kind`` (default: the first of ``settings.judges`` that needs no trained artifact):
    ``offline`` -> OfflineJudge; ``anthropic`` -> AnthropicJudge (key from ``api_key`` or the
    ANTHROPIC_API_KEY environment variable; ``base_url`` or ANTHROPIC_BASE_URL for a proxy/test server)."""
    if kind is None:
        if not settings.fixed_judges:
            raise ValueError(f"evaluation.judges {settings.judges} names no offline or anthropic judge to build")
        kind = settings.fixed_judges[0]
    if kind not in ("offline", "anthropic"):
        raise ValueError(f"build_judge builds offline | anthropic, not {kind!r} (the reward model is an asset)")
    if kind == "offline":
        from replyassets.judges.offline import OfflineJudge

        return OfflineJudge(tie_margin=settings.offline_tie_margin, min_chars=validation.min_chars,
                            max_chars=validation.max_chars)
    from replyassets.judges.anthropic_judge import AnthropicJudge

    return AnthropicJudge(
        settings.judge_model,
        api_key=api_key,
        base_url=base_url,
        max_retries=settings.judge_max_retries,
        timeout=settings.judge_timeout_s,
    )
