"""Where built models live: ``REPLYASSETS_MODELS_DIR`` when set (several data dirs share one
content-addressed folder), else ``<data dir>/models``."""

from __future__ import annotations

from replyassets import settings as settings_mod


def test_models_dir_defaults_to_the_data_dir_and_follows_the_environment(isolated_env, monkeypatch, tmp_path):
    monkeypatch.delenv("REPLYASSETS_MODELS_DIR", raising=False)
    assert settings_mod.get_settings().models_dir == isolated_env / "models"
    monkeypatch.setenv("REPLYASSETS_MODELS_DIR", str(tmp_path / "shared-models"))
    assert settings_mod.get_settings().models_dir == tmp_path / "shared-models"
