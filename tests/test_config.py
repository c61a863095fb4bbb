import pytest
from helpers import cli

from simple_diffusion import UserError, config

SEED_MD = {
    ("schedule", "kind"): "constant",
    ("schedule", "beta"): 0.02,
    ("schedule", "num_timesteps"): 250,
    ("model", "kind"): "seed_mlp",
    ("model", "hidden"): [16, 16],
    ("model", "activation"): "relu",
    ("model", "prediction_type"): "epsilon",
    ("train", "lr"): 0.8e-4,
    ("train", "lr_schedule"): "constant",
    ("train", "warmup_steps"): 0,
    ("train", "batch_size"): 64,
    ("train", "epochs"): 1000,
    ("train", "ema_decay"): 0.0,
    ("train", "timesteps"): "discrete",
    ("train", "t_min"): 1,
    ("train", "t_max"): 249,
    ("data", "train_size"): 10_000,
    ("data", "val_size"): 1_000,
    ("data", "data_seed"): 42,
    ("data", "preprocess"): "none",
    ("sample", "sampler"): "ancestral",
    ("sample", "num_steps"): 0,
    ("sample", "variance"): "beta",
    ("model", "gaussian_part"): 0.0,  # the assignment's network alone
}


@pytest.mark.parametrize(("section", "key"), SEED_MD)
def test_seed_preset_is_the_assignment(section, key):
    assert getattr(getattr(config.preset("seed"), section), key) == SEED_MD[section, key]


def test_seed_network_is_2_16_16_1():
    from simple_diffusion import build

    net = build.denoiser(config.preset("seed").model, 1, 250)
    assert [(layer.in_features, layer.out_features) for layer in net.layers] == [(2, 16), (16, 16), (16, 1)]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train": {"epochs": -3}}, "train.epochs"),
        ({"train": {"lr": 0.0}}, "train.lr"),
        ({"train": {"lr": -1e-3}}, "train.lr"),
        ({"train": {"lr": "fast"}}, "train.lr"),
        ({"train": {"batch_size": -1}}, "train.batch_size"),
        ({"train": {"steps": -1}}, "train.steps"),
        ({"train": {"patience": 1.5}}, "train.patience"),
        ({"schedule": {"kind": "quadratic"}}, "schedule.kind"),
        ({"schedule": {"beta": 1.5}}, "schedule.beta"),
        ({"model": {"prediction_type": "x1"}}, "model.prediction_type"),
        ({"train": {"momentum": 0.9}}, "train.momentum"),
        ({"optimiser": {"lr": 1}}, "optimiser"),
        ({"sample": {"num_steps": 5000}}, "sample.num_steps"),
    ],
)
def test_impossible_settings_are_refused_by_name(changes, message):
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        config.override(config.preset("default"), changes)


def test_one_name_where_a_list_is_wanted_is_shown_as_the_list_it_meant(tmp_path, capsys):
    """`sweep --set data.categorical=smoker` (or a string in Python) said it "must be a list" and
    not how to write one; the TOML list it shows works as --set's value."""
    with pytest.raises(UserError, match=r"^data\.categorical must be a list of names, got 'kind' "
                                        r"\(a list of one: \['kind'\]\)$"):
        config.override(config.preset("default"), {"data": {"categorical": "kind"}})
    data = tmp_path / "t.csv"
    data.write_text("kind,x\n" + "".join(f"{k % 3},{k}.5\n" for k in range(40)))
    out = tmp_path / "sweep"
    assert cli(["sweep", str(out), "--data", str(data), "--set", "data.categorical=kind", "-n", "0"]) == 1
    shown = capsys.readouterr().err.strip().rsplit("(a list of one: ", 1)[1].removesuffix(")")
    assert shown == '["kind"]'
    assert cli(["sweep", str(out), "--data", str(data), "--set", f"data.categorical={shown}",
                "--set", "train.steps=5", "-n", "0", "--quiet"]) == 0
    (run,) = out.glob("*/config.toml")
    assert config.load_toml(str(run))["data"]["categorical"] == ["kind"]
    # Names in brackets without quotes (not TOML, so read as text): the quoted list, not ["[kind]"].
    assert cli(["sweep", str(out), "--data", str(data), "--set", "data.categorical=[kind, 'x']",
                "-n", "0"]) == 1
    assert capsys.readouterr().err.strip().endswith('(in TOML the names in a list are quoted: ["kind", "x"])')


def test_the_density_preset_is_the_default_with_a_larger_part_and_log_sigma_levels():
    default, density = config.preset("default").to_dict(), config.preset("density").to_dict()
    differ = {(section, key): density[section][key] for section in default for key in default[section]
              if default[section][key] != density[section][key]}
    assert differ == {("model", "gaussian_part"): 0.9, ("train", "timesteps"): "logsnr"}


def test_unknown_preset():
    with pytest.raises(UserError, match="unknown preset"):
        config.preset("fancy")


def test_toml_round_trip(tmp_path):
    import tomli_w

    cfg = config.override(config.preset("default"), {"train": {"epochs": 7}, "model": {"hidden": [8, 8]}})
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(cfg.to_dict()))
    assert config.from_dict(config.load_toml(str(path))) == cfg
