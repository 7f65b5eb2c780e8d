"""Resources, chosen by profile (``REPLYASSETS_PROFILE=local|production``).

Each resource is a thin configurable wrapper that builds a plain object from ``sources/``,
``scorers/`` or ``judges/``; secrets come from environment variables through ``dg.EnvVar``
and are never logged or stored.
"""


from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg

from replyassets.settings import EvaluationSettings, Settings, get_settings


class TweetSourceResource(dg.ConfigurableResource):
    """Where tweets come from: ``replay`` (exports under the sample dir) or ``apify``."""

    kind: str = "replay"
    sample_dir: str = "data/sample"
    apify_token: str | None = None
    actor_id: str = "apidojo/tweet-scraper"
    reply_actor_id: str | None = None
    api_url: str | None = None
    max_retries: int = 4
    backoff_s: float = 2.0
    request_timeout_s: float = 30.0
    run_timeout_s: int = 600
    price_per_1000_items: float = 0.25
    """USD per 1,000 items for the cost estimate (the original prototype's figure, see docs/design.md; check your actor's price)."""

    def build(self):
        if self.kind == "replay":
            from replyassets.sources.replay import ReplaySource

            return ReplaySource(Path(get_settings().paths.resolve(self.sample_dir)))
        if self.kind == "apify":
            from replyassets.sources.apify import ApifySource

            if not self.apify_token:
                raise dg.Failure(
                    "The apify tweet source needs APIFY_API_TOKEN in the environment "
                    "(export APIFY_API_TOKEN=... before starting Dagster)."
                )
            return ApifySource(
                token=self.apify_token,
                actor_id=self.actor_id,
                reply_actor_id=self.reply_actor_id,
                api_url=self.api_url,
                max_retries=self.max_retries,
                backoff_s=self.backoff_s,
                request_timeout_s=self.request_timeout_s,
                run_timeout_s=self.run_timeout_s,
                price_per_1000_items=self.price_per_1000_items,
            )
        raise dg.Failure(f"unknown tweet source kind {self.kind!r} (replay | apify)")


@lru_cache(maxsize=1)
def _language_scorer():
    from replyassets.scorers.language import LanguageScorer

    return LanguageScorer()


class LanguageResource(dg.ConfigurableResource):
    """English confidence with lingua (same in every profile)."""

    def build(self):
        return _language_scorer()


class ToxicityResource(dg.ConfigurableResource):
    """``profanity-check`` (alt-profanity-check, offline) or ``detoxify`` (production)."""

    kind: str = "profanity-check"
    detoxify_model_type: str = "original"
    detoxify_checkpoint: str | None = None
    detoxify_config_path: str | None = None
    device: str = "cpu"

    def build(self):
        from replyassets.scorers.toxicity import make_toxicity_scorer

        if self.kind == "detoxify":
            return make_toxicity_scorer(
                "detoxify",
                model_type=self.detoxify_model_type,
                checkpoint=self.detoxify_checkpoint,
                huggingface_config_path=self.detoxify_config_path,
                device=self.device,
            )
        return make_toxicity_scorer(self.kind)


class EmbedderResource(dg.ConfigurableResource):
    """Sentence-transformers embeddings; ``packaged:all-MiniLM-L6-v2`` needs no download.

    ``backend`` / ``precision``: ``dedup.embedding_backend`` / ``dedup.embedding_precision``
    (torch | onnx | openvino); the onnx and openvino exports live under the data dir.
    """

    model: str = "packaged:all-MiniLM-L6-v2"
    batch_size: int = 128
    device: str = "cpu"
    backend: str = "openvino"
    precision: str = "auto"

    def build(self):
        from replyassets.scorers.embeddings import (
            EmbeddingBackendError,
            SentenceTransformerEmbedder,
        )

        try:
            return SentenceTransformerEmbedder(self.model, batch_size=self.batch_size, device=self.device,
                                               backend=self.backend, precision=self.precision,
                                               export_dir=get_settings().models_dir / "embeddings")
        except EmbeddingBackendError as exc:
            raise dg.Failure(description=str(exc)) from exc


class JudgeResource(dg.ConfigurableResource):
    """The judges of ``evaluation.judges`` that need no trained artifact: ``offline``
    (deterministic, reference-based) and ``anthropic`` (Claude). The ``reward_model`` judge is
    built from the ``reward_model`` asset (an input of the evaluation), not here.

    Built from ``EvaluationSettings`` (:meth:`from_settings`): the judges, model, retries and
    timeout are defined there only, so these fields have no defaults of their own. The offline
    judge's length limits are ``validation.min_chars`` / ``validation.max_chars``."""

    kinds: list[str]
    model: str
    max_retries: int
    timeout_s: float
    api_key: str | None = None
    base_url: str | None = None

    @classmethod
    def from_settings(cls, ev: EvaluationSettings, *, api_key: Any = None, base_url: str | None = None) -> "JudgeResource":
        return cls(kinds=list(ev.judges), model=ev.judge_model, max_retries=ev.judge_max_retries,
                   timeout_s=ev.judge_timeout_s, api_key=api_key, base_url=base_url)

    def build(self, kind: str | None = None):
        """The judge ``kind`` (default: the first listed offline or anthropic judge)."""
        from replyassets.judges.factory import build_judge

        unknown = [k for k in self.kinds if k not in ("offline", "reward_model", "anthropic")]
        if unknown or not self.kinds:
            raise dg.Failure(f"unknown judge kind(s) {unknown or self.kinds!r} in evaluation.judges "
                             "(offline | reward_model | anthropic)")
        fixed = [k for k in self.kinds if k != "reward_model"]
        kind = kind or (fixed[0] if fixed else None)
        if kind not in fixed:
            raise dg.Failure(f"judge {kind!r} is not an offline or anthropic judge of evaluation.judges {self.kinds}")
        if kind == "anthropic" and not self.api_key:
            raise dg.Failure("The anthropic judge needs ANTHROPIC_API_KEY in the environment.")
        s = get_settings()
        ev = s.evaluation.model_copy(
            update={"judges": list(self.kinds), "judge_model": self.model, "judge_max_retries": self.max_retries,
                    "judge_timeout_s": self.timeout_s}
        )
        return build_judge(ev, s.validation, api_key=self.api_key, base_url=self.base_url, kind=kind)


def _io_manager(s: Settings):
    """The IO manager on the settings' storage (``storage.backend``). The DuckLake catalog's
    connection string stays in its environment variable: only the variable's name is config."""
    from replyassets.defs.storage import ReplyAssetsDuckDBIOManager

    st = s.storage
    if s.storage_backend == "ducklake":
        return ReplyAssetsDuckDBIOManager(
            backend="ducklake", database="lake", data_path=s.lake_data_path, catalog_env=st.ducklake.catalog_env,
            schema=s.paths.schema_name, lock_timeout_s=st.lock_timeout_s, max_retries=st.ducklake.max_retries,
        )
    return ReplyAssetsDuckDBIOManager(database=str(s.database_path), schema=s.paths.schema_name,
                                      lock_timeout_s=st.lock_timeout_s, max_retries=st.ducklake.max_retries)


def resources_for_profile(profile: str | None = None) -> dict[str, Any]:
    s = get_settings(profile)
    from replyassets.defs.artifacts import ARTIFACT_IO_MANAGER, ArtifactIOManager
    from replyassets.defs.launchers import training_launcher_for

    common = {
        "io_manager": _io_manager(s),
        ARTIFACT_IO_MANAGER: ArtifactIOManager(base_dir=str(s.data_dir / "artifacts")),
        "language": LanguageResource(),
        "embedder": EmbedderResource(model=_packaged_or(s.dedup.embedding_model), batch_size=s.dedup.batch_size,
                                     backend=s.dedup.embedding_backend, precision=s.dedup.embedding_precision),
    }
    if s.profile == "production":
        return {
            **common,
            "tweet_source": TweetSourceResource(kind="apify", apify_token=dg.EnvVar("APIFY_API_TOKEN")),
            "toxicity": ToxicityResource(kind="detoxify"),
            "judge": JudgeResource.from_settings(s.evaluation, api_key=dg.EnvVar("ANTHROPIC_API_KEY")),
            "launcher": training_launcher_for(s),
        }
    return {
        **common,
        "tweet_source": TweetSourceResource(kind="replay", sample_dir=s.paths.sample_dir),
        "toxicity": ToxicityResource(kind="profanity-check"),
        "judge": JudgeResource.from_settings(s.evaluation),
        "launcher": training_launcher_for(s),
    }


def _packaged_or(model: str) -> str:
    return model


# Picked up by `load_from_defs_folder` (replyassets/definitions.py): the active profile's resources.
defs = dg.Definitions(resources=resources_for_profile())
