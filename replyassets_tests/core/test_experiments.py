"""Recipes as data: config/experiments.yaml, sweeps and their names, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from replyassets.experiments import (
    ExperimentsFileError,
    format_value,
    load_experiments,
    sweep_name,
)
from replyassets.settings import PROJECT_ROOT, load_settings


@pytest.fixture(scope="module")
def local():
    return load_settings("local")


def write(tmp_path: Path, doc) -> Path:
    path = tmp_path / "experiments.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


def test_shipped_file_has_default_first_an_aa_twin_and_another_recipe(local):
    exps = load_experiments(PROJECT_ROOT / "config" / "experiments.yaml", local)
    names = [e.name for e in exps]
    assert names[0] == "default" and len(names) >= 3
    assert exps[0].training_settings(local.training) == local.training
    twin = next(e for e in exps if e.overrides() == {"training.seed": 43})
    assert twin.training_settings(local.training).seed != local.training.seed


def test_overrides_apply_on_top_of_the_profile(tmp_path, local):
    path = write(tmp_path, {"experiments": [
        {"name": "r8-q", "training": {"lora": {"r": 8}, "quantization": "nf4"}, "evaluation": {"temperature": 0.3}},
    ]})
    exp = load_experiments(path, local)[1]
    tr = exp.training_settings(local.training)
    assert (tr.lora.r, tr.lora.alpha, tr.quantization) == (8, local.training.lora.alpha, "nf4")
    assert tr.learning_rate == local.training.learning_rate
    assert exp.evaluation_settings(local.evaluation).temperature == 0.3
    assert exp.overrides() == {"training.lora.r": 8, "training.quantization": "nf4", "evaluation.temperature": 0.3}


def test_sweep_expands_to_deterministic_readable_names(tmp_path, local):
    path = write(tmp_path, {"sweeps": [{"grid": {"training.lora.r": [8, 32], "training.learning_rate": [1.0e-4, 3.0e-4]}}]})
    names = [e.name for e in load_experiments(path, local)]
    assert names == ["default", "r8-lr1e-4", "r8-lr3e-4", "r32-lr1e-4", "r32-lr3e-4"]
    exp = load_experiments(path, local)[3]
    assert exp.training_settings(local.training).lora.r == 32
    assert exp.training_settings(local.training).learning_rate == pytest.approx(1e-4)


@pytest.mark.parametrize(("value", "text"), [(1e-4, "1e-4"), (2.5e-4, "2p5e-4"), (0.1, "0p1"), (2.0, "2"),
                                             (16, "16"), (True, "on"), ("nf4", "nf4"), ("Qwen/Qwen3-8B", "qwen-qwen3-8b")])
def test_value_formatting(value, text):
    assert format_value(value) == text


def test_sweep_prefix_and_base(tmp_path, local):
    path = write(tmp_path, {"sweeps": [{"prefix": "qlora", "base": {"training": {"quantization": "nf4"}},
                                         "grid": {"training.lora.dropout": [0.05, 0.1]}}]})
    exps = load_experiments(path, local)[1:]
    assert [e.name for e in exps] == ["qlora-drop0p05", "qlora-drop0p1"]
    assert all(e.training_settings(local.training).quantization == "nf4" for e in exps)
    assert sweep_name({"evaluation.top_p": 0.9}) == "topp0p9"


def test_preference_methods_and_hyperparameters_are_overridable(tmp_path, local):
    path = write(tmp_path, {
        "experiments": [
            {"name": "dpo-b02", "training": {"method": "dpo", "dpo": {"beta": 0.2, "loss_type": "ipo"}}},
            {"name": "sft-then-dpo", "training": {"method": "sft+dpo"}},
            {"name": "kto-w", "training": {"method": "kto", "kto": {"undesirable_weight": 1.33}}},
        ],
        "sweeps": [{"grid": {"training.method": ["dpo", "sft+dpo"], "training.dpo.beta": [0.05, 0.5]}}],
    })
    exps = {e.name: e for e in load_experiments(path, local)}
    dpo = exps["dpo-b02"].training_settings(local.training)
    assert (dpo.method, dpo.dpo.beta, dpo.dpo.loss_type) == ("dpo", 0.2, "ipo")
    # the other DPO settings stay the profile's
    assert dpo.dpo.learning_rate == local.training.dpo.learning_rate and dpo.kto == local.training.kto
    assert exps["sft-then-dpo"].training_settings(local.training).method == "sft+dpo"
    kto = exps["kto-w"].training_settings(local.training)
    assert (kto.method, kto.kto.undesirable_weight, kto.kto.desirable_weight) == ("kto", 1.33, 1.0)
    assert {"dpo-dpobeta0p05", "dpo-dpobeta0p5", "sft-dpo-dpobeta0p05", "sft-dpo-dpobeta0p5"} <= set(exps)
    assert exps["sft-dpo-dpobeta0p5"].overrides() == {"training.method": "sft+dpo", "training.dpo.beta": 0.5}
    assert exps["default"].training_settings(local.training).method == "sft"


@pytest.mark.parametrize(("doc", "message"), [
    ({"experiments": [{"name": "x", "training": {"method": "ppo"}}]},
     r"experiment #1 \(x\): bad value for 'training.method'.*'ppo'"),
    ({"experiments": [{"name": "x", "training": {"dpo": {"betta": 0.1}}}]},
     r"experiment #1 \(x\): unknown key 'training.dpo.betta'; allowed: beta, epochs"),
    ({"experiments": [{"name": "x", "training": {"kto": {"weight": 2}}}]},
     r"unknown key 'training.kto.weight'; allowed: beta, desirable_weight"),
    ({"experiments": [{"name": "x", "training": {"dpo": {"loss_type": "orpo"}}}]},
     r"bad value for 'training.dpo.loss_type'"),
    ({"experiments": [{"name": "x", "training": {"dpo": {"beta": 0}}}]},
     r"bad value for 'training.dpo.beta': Input should be greater than 0"),
    ({"experiments": [{"name": "x", "training": {"kto": {"learning_rate": -1e-5}}}]},
     r"bad value for 'training.kto.learning_rate'"),
    ({"experiments": [{"name": "x", "training": {"dpo": 0.1}}]}, r"'training.dpo' must be a mapping"),
    ({"sweeps": [{"grid": {"training.method": ["sft", "ppo"]}}]}, r"sweep #1 \(ppo\).*bad value for 'training.method'"),
])
def test_bad_preference_overrides_fail_naming_file_entry_and_key(tmp_path, local, doc, message):
    path = write(tmp_path, doc)
    with pytest.raises(ExperimentsFileError, match=message) as err:
        load_experiments(path, local)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(("doc", "message"), [
    ({"experiments": [{"name": "x", "training": {"lora": {"rank": 8}}}]},
     r"experiment #1 \(x\): unknown key 'training.lora.rank'"),
    ({"experiments": [{"name": "x", "training": {"learning_rte": 1e-4}}]},
     r"experiment #1 \(x\): unknown key 'training.learning_rte'"),
    ({"experiments": [{"name": "x", "evaluation": {"judge": "offline"}}]},
     r"unknown key 'evaluation.judge'"),
    ({"experiments": [{"name": "x", "training": {"quantization": "int3"}}]},
     r"experiment #1 \(x\): bad value for 'training.quantization'"),
    ({"experiments": [{"name": "x", "training": {"lora": {"r": "big"}}}]},
     r"bad value for 'training.lora.r'"),
    ({"experiments": [{"name": "a"}, {"name": "a"}]}, r"duplicate experiment names \['a'\]"),
    ({"experiments": [{"name": "Bad_Name"}]}, r"experiment #1: invalid experiment name 'Bad_Name'"),
    ({"experiments": [{"name": "x", "lr": 1}]}, r"experiment #1: unknown key\(s\) \['lr'\]"),
    ({"experiments": [{"name": "default", "training": {"seed": 1}}]}, r"'default' is the profile's settings"),
    ({"sweeps": [{"grid": {"lora.r": [8]}}]}, r"sweep #1: grid key 'lora.r' must start with"),
    ({"sweeps": [{"grid": {"training.lora.r": []}}]}, r"needs a non-empty list"),
    ({"sweeps": [{"grid": {"training.lora.r": [8]}}], "experiments": [{"name": "r8"}]}, r"duplicate experiment names \['r8'\]"),
    ({"runs": []}, r"unknown top-level key"),
])
def test_bad_files_fail_naming_file_entry_and_key(tmp_path, local, doc, message):
    path = write(tmp_path, doc)
    with pytest.raises(ExperimentsFileError, match=message) as err:
        load_experiments(path, local)
    assert str(path) in str(err.value)


def test_missing_file_means_only_the_default(tmp_path, local):
    assert [e.name for e in load_experiments(tmp_path / "none.yaml", local)] == ["default"]
