"""Pick the judge for a profile from EvaluationSettings (``judge: offline | anthropic``); the
offline judge's length limits are the validation ones (ValidationSettings)."""

from __future__ import annotations

from replyassets.judges.base import Judge
from replyassets.settings import EvaluationSettings, ValidationSettings


def build_judge(
    settings: EvaluationSettings,
    validation: ValidationSettings,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
) -> Judge:
    """``offline`` -> OfflineJudge; ``anthropic`` -> AnthropicJudge (key from ``api_key`` or the
    ANTHROPIC_API_KEY environment variable; ``base_url`` or ANTHROPIC_BASE_URL for a proxy/test server)."""
    if settings.judge == "offline":
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
