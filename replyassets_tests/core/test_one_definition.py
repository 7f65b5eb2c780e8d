"""One definition per fact: every threshold and default lives in the settings (the training ones
in replyassets/training/config.py, from which the settings are built), and what documents or
consumes them is derived, not copied."""

from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path

from pydantic import BaseModel

from replyassets.core import settings_doc
from replyassets.settings import PROJECT_ROOT, Settings, TrainingSettings
from replyassets.training import config as train_config

PACKAGE = PROJECT_ROOT / "replyassets"
# The definitions themselves.
DEFINING = {"settings.py", "training/config.py"}
# Copies found in modules outside this change's scope (a parameter or resource field named like
# a setting, with the setting's default). Listed exactly, so the list can only shrink: a new copy
# fails the test, and so does an entry here once its copy is gone.
KNOWN_COPIES = {
    ("core/db.py", "backend"),
    ("core/dedup.py", "ann_threshold_rows"),
    ("core/human_eval.py", "seed"),
    ("core/stats.py", "alpha"),
    ("defs/resources.py", "batch_size"),
    ("defs/resources.py", "sample_dir"),
    ("scorers/embedding_backends.py", "batch_size"),
    ("scorers/embeddings.py", "batch_size"),
    ("scorers/language.py", "english_prior"),
}


def _leaves(model: BaseModel, prefix: str = ""):
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _leaves(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", name, value


def _literal_defaults(tree: ast.AST):
    """(name, default, line) for every function parameter and annotated class attribute with a
    literal default."""
    for node in ast.walk(tree):
        pairs: list[tuple[str, ast.expr]] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            pos = a.posonlyargs + a.args
            pairs += [(x.arg, d) for x, d in zip(pos[len(pos) - len(a.defaults):], a.defaults)]
            pairs += [(x.arg, d) for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
        elif isinstance(node, ast.ClassDef):
            pairs += [(s.target.id, s.value) for s in node.body
                      if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value is not None]
        for name, default in pairs:
            if isinstance(default, ast.Constant) and not isinstance(default.value, bool):
                yield name, default.value, default.lineno


def find_copies(sources: dict[str, str]) -> set[tuple[str, str]]:
    """(module, name) for each parameter/field named like a setting whose literal default equals
    that setting's default (a second definition of it). 0, 1, -1, "" and None are not facts."""
    defaults: dict[str, set] = {}
    for _, name, value in _leaves(Settings()):
        if isinstance(value, (int, float, str)) and not isinstance(value, bool) and value not in (0, 1, -1, ""):
            defaults.setdefault(name, set()).add(value)
    aliases = {"tie_margin": "offline_tie_margin", "judge_model": "judge_model", "timeout_s": "judge_timeout_s"}
    found = set()
    for rel, text in sources.items():
        for name, value, _ in _literal_defaults(ast.parse(text)):
            if value in defaults.get(aliases.get(name, name), ()):
                found.add((rel, name))
    return found


def _package_sources() -> dict[str, str]:
    return {
        str(p.relative_to(PACKAGE)): p.read_text(encoding="utf-8")
        for p in sorted(PACKAGE.rglob("*.py"))
        if str(p.relative_to(PACKAGE)) not in DEFINING
    }


def test_no_module_redefines_a_setting_default():
    copies = find_copies(_package_sources())
    new = copies - KNOWN_COPIES
    assert not new, f"defaults copied from replyassets/settings.py (pass the setting's value instead): {sorted(new)}"
    gone = KNOWN_COPIES - copies
    assert not gone, f"remove these from KNOWN_COPIES, their copies are gone: {sorted(gone)}"


def test_the_scan_finds_a_reintroduced_copy():
    # the copies this change removed, written back: each one is found
    reintroduced = {
        "judges/offline.py": "class OfflineJudge:\n    def __init__(self, *, tie_margin: float = 0.02, min_chars: int = 30,"
                             " max_chars: int = 280) -> None: ...\n",
        "commands/review.py": "def review_loop(store, candidates, limit, reviewer, min_chars=30, max_chars=280): ...\n",
        "defs/resources.py": "class JudgeResource:\n    judge_model: str = 'claude-sonnet-4-6'\n    timeout_s: float = 60.0\n",
        "training/other.py": "@dataclass\nclass Spec:\n    learning_rate: float = 2e-4\n    gap_alarm: float = 0.3\n",
    }
    assert find_copies(reintroduced) == {
        ("judges/offline.py", "tie_margin"), ("judges/offline.py", "min_chars"), ("judges/offline.py", "max_chars"),
        ("commands/review.py", "min_chars"), ("commands/review.py", "max_chars"),
        ("defs/resources.py", "judge_model"), ("defs/resources.py", "timeout_s"),
        ("training/other.py", "learning_rate"), ("training/other.py", "gap_alarm"),
    }
    # other numbers and names are not flagged
    assert find_copies({"x.py": "def f(min_chars=31, n=30, flag=True): ...\n"}) == set()


def test_each_threshold_that_had_copies_is_one_setting():
    s = Settings()
    assert "max_replies_per_author" not in type(s.curation).model_fields  # collection's only
    assert s.collection.max_replies_per_author == 10
    # the judge's model, retries and timeout: EvaluationSettings only; the resource has no defaults
    from replyassets.defs.resources import JudgeResource

    for name in ("kinds", "model", "max_retries", "timeout_s"):
        assert JudgeResource.model_fields[name].is_required(), name
    judge = JudgeResource.from_settings(s.evaluation)
    assert (judge.kinds, judge.model, judge.max_retries, judge.timeout_s) == (
        s.evaluation.judges, s.evaluation.judge_model, s.evaluation.judge_max_retries, s.evaluation.judge_timeout_s)


def _fields(spec: type) -> dict[str, object]:
    return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory() for f in dataclasses.fields(spec)}


def test_training_settings_are_built_from_the_training_config():
    tree = ast.parse((PACKAGE / "settings.py").read_text(encoding="utf-8"))
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert not classes & {"TrainingSettings", "LoraSettings", "DpoSettings", "KtoSettings"}, \
        "the training settings are built from replyassets/training/config.py, not written out again"
    spec = _fields(train_config.TrainingSpec)
    assert set(TrainingSettings.model_fields) == set(spec) | {"base_model", *train_config.ORCHESTRATOR_KEYS}
    assert set(spec).isdisjoint(train_config.ORCHESTRATOR_KEYS)
    t = TrainingSettings()
    for name, default in spec.items():
        value = getattr(t, name)
        if dataclasses.is_dataclass(default):
            want = {k: tuple(v) if isinstance(v, list) else v for k, v in dataclasses.asdict(default).items()}
            assert value.model_dump() == want, name
        else:
            assert value == default, name
    # the allowed values are the config's, as Literal types
    assert typing.get_args(TrainingSettings.model_fields["method"].annotation) == train_config.METHODS
    assert typing.get_args(TrainingSettings.model_fields["quantization"].annotation) == train_config.QUANTIZATIONS
    assert typing.get_args(TrainingSettings.model_fields["report_to"].annotation) == train_config.REPORT_TO
    dpo = TrainingSettings.model_fields["dpo"].annotation
    assert typing.get_args(dpo.model_fields["loss_type"].annotation) == train_config.DPO_LOSS_TYPES
    assert t.lora.target_modules == train_config.SEVEN_PROJECTIONS
    # and the settings dumped are a valid training config with the same values
    cfg = train_config.TrainConfig.from_dict(
        {**t.model_dump(mode="json"), "base_model": "m", "train_file": "t", "eval_file": "e", "output_dir": "o"})
    assert cfg.learning_rate == t.learning_rate and cfg.dpo.loss_type == t.dpo.loss_type


def test_design_doc_defaults_are_generated_from_the_settings(tmp_path):
    assert settings_doc.main(["--check"]) == 0, "run: python -m replyassets.core.settings_doc"
    # the check is not vacuous: a changed default (or a hand edit) makes it fail
    block = settings_doc.render()
    assert "| `validation.max_chars` | `280` |" in block and "| `training.lora.r` | `16` |" in block
    changed = settings_doc.render(Settings(validation={"max_chars": 300}))
    doc = tmp_path / "design.md"
    doc.write_text(settings_doc.replace_block(settings_doc.DESIGN.read_text(encoding="utf-8"), changed))
    assert settings_doc.main(["--check", "--file", str(doc)]) == 1
    assert settings_doc.main(["--file", str(doc)]) == 0 and settings_doc.main(["--check", "--file", str(doc)]) == 0
    assert Path(settings_doc.DESIGN).read_text(encoding="utf-8").count(settings_doc.BEGIN) == 1


def test_reply_length_limits_are_validations_only():
    """Collection filters reply length with validation's limits: one definition, both stages."""
    from replyassets.core.filters import reply_reasons
    from replyassets.settings import CollectionSettings

    assert not {n for n in CollectionSettings.model_fields if "chars" in n}
    from replyassets_tests.core.test_filters import reply as make_reply
    from replyassets_tests.core.test_filters import tweet as make_tweet

    tweet, reply = make_tweet(), make_reply(text="x" * 50)
    assert "too_short" not in reply_reasons(reply, tweet, CollectionSettings())
    assert "too_short" in reply_reasons(reply, tweet, CollectionSettings(), (60, 280))
    assert "too_long" in reply_reasons(reply, tweet, CollectionSettings(), (30, 40))


def test_every_setting_a_rule_names_exists():
    """The rule -> settings tables name real keys (a renamed or moved setting fails here, not in
    a check message at run time)."""
    from replyassets.core import rule_settings as rs
    from replyassets.settings import Settings

    keys = {k for table in (rs.COLLECTION_RULE_SETTINGS, rs.VALIDATION_RULE_SETTINGS, rs.OTHER_RULE_SETTINGS)
            for ks in table.values() for k in ks}
    missing = []
    for key in sorted(keys):
        node = Settings()
        for part in key.split("."):
            if not hasattr(node, part):
                missing.append(key)
                break
            node = getattr(node, part)
    assert keys and not missing, missing
