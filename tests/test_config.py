import importlib
import json

import pytest

from millivid.presets import (
    EVAL_PRESETS,
    PRESET_NAMES,
    PRESETS,
    REPRODUCE_PRESETS,
    Config,
    load_preset,
)
from millivid.typed_config import ConfigError, from_dict, load_json, save_json, to_dict


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_presets_round_trip_json(name, tmp_path):
    cfg = load_preset(name)
    save_json(cfg, tmp_path / "c.json")
    assert load_json(Config, tmp_path / "c.json") == cfg


def test_overrides_apply_and_coerce():
    cfg = load_preset(
        "tiny", ["model.depth=3", "plan.context=2,4,8", "model.attention=context-causal"]
    )
    assert cfg.model.depth == 3
    assert cfg.plan.context == (2, 4, 8)
    assert cfg.model.attention == "context-causal"


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(ConfigError, match="'depht'"):
        load_preset("tiny", ["model.depht=3"])
    with pytest.raises(ConfigError, match="'bogus'"):
        from_dict(Config, {"bogus": 1})


def test_bad_value_and_literal_rejected():
    with pytest.raises(ConfigError, match="model.attention"):
        load_preset("tiny", ["model.attention=sideways"])
    with pytest.raises(ConfigError, match="model.depth"):
        load_preset("tiny", ["model.depth=2.5"])


def test_unknown_preset():
    with pytest.raises(ConfigError, match="huge"):
        load_preset("huge")


def test_bad_json_file_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="broken.json"):
        load_json(Config, path)
    path.write_text(json.dumps({"model": {"nope": 1}}))
    with pytest.raises(ConfigError, match="nope"):
        load_json(Config, path)


def test_token_counts_match_design_table():
    assert load_preset("paper").ae.tokens_per_frame() == (256, 64, 16, 4)
    assert load_preset("mini").ae.tokens_per_frame() == (64, 16, 4, 1)
    assert load_preset("tiny").ae.tokens_per_frame() == (16, 4, 1)
    for name in PRESET_NAMES:
        cfg = load_preset(name)
        assert cfg.plan.tokens == cfg.ae.tokens_per_frame()
        assert to_dict(cfg)["preset"] == name


def test_plan_tokens_are_derived_from_the_autoencoder_and_a_given_mismatch_is_refused():
    cfg = load_preset("mini", ["ae.levels=3", "plan.context=3,12,48"])
    assert cfg.plan.tokens == (64, 16, 4) == cfg.ae.tokens_per_frame()
    assert load_preset("tiny", ["ae.image_size=64"]).plan.tokens == (64, 16, 4)
    with pytest.raises(
        ConfigError,
        match=r"plan.tokens = 64,16,4,1 but the autoencoder .*ae.levels=3\) has 64,16,4 tokens",
    ):
        load_preset("mini", ["ae.levels=3", "plan.tokens=64,16,4,1"])


@pytest.mark.parametrize(
    "package", ["model", "diffusion", "world", "plan", "train", "autoencoder", "evaluate"]
)
def test_no_package_below_the_presets_keeps_a_preset_table(package):
    """Every preset value is in millivid/presets.py; the stage packages define only the config
    dataclasses, so a value cannot be changed in one table and read stale from another."""
    for module in (f"millivid.{package}", f"millivid.{package}.config"):
        tables = {"PRESETS", "TRAIN_PRESETS"} & set(vars(importlib.import_module(module)))
        assert not tables, f"{module} defines {sorted(tables)}"
    assert not hasattr(importlib.import_module("millivid.reproduce"), "PRESETS")


def test_every_preset_table_names_exactly_the_presets():
    for table in (PRESETS, EVAL_PRESETS, REPRODUCE_PRESETS):
        assert tuple(table) == PRESET_NAMES
    assert [PRESETS[name].preset for name in PRESET_NAMES] == list(PRESET_NAMES)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_load_preset_is_the_table_entry_with_the_plan_tokens_derived(name):
    cfg = load_preset(name)
    assert cfg.plan.tokens == cfg.ae.tokens_per_frame() == PRESETS[name].plan.tokens
    assert cfg == PRESETS[name]
