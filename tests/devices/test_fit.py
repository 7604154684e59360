"""Fitting a preset to pulse-response measurements: recovery of known presets from simulated
measurements (20 devices x 5 cycles), malformed files, preset files, the command line."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from insitu import cli
from insitu.devices import (
    DeviceFit,
    DeviceParams,
    Measurement,
    apply_pulses,
    fit_device,
    get_device,
    read_measurement,
    read_preset,
    sample_device_array,
    simulate_measurement,
    write_measurement,
    write_preset,
)
from insitu.devices.asymmetry import asymmetry_from_steps, nominal_steps
from insitu.errors import ConfigError, DataError

DEVICES, CYCLES, SEED = 20, 5, 1
# Generating preset, pulses each way per cycle (enough to reach both bounds), the g_ref the
# fit is told (None: its own symmetry point, which is the preset's for these presets).
CASES = {
    "ecram-liwo3": (2500, None),
    "reram-taox": (120, 0.5),  # up_down 0.26 is quoted at g_ref 0.5, not the symmetry point
    "reram-soft-bounds": (2500, None),
    "gokmen-vlasov": (3000, None),
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def simulate(name: str, seed: int = SEED) -> Measurement:
    pulses = CASES[name][0]
    gen = torch.Generator().manual_seed(seed)
    return simulate_measurement(get_device(name), DEVICES, CYCLES, pulses, gen)


@pytest.fixture(scope="module", params=sorted(CASES))
def fitted(request: pytest.FixtureRequest) -> tuple[DeviceParams, DeviceFit]:
    name = request.param
    return get_device(name), fit_device(simulate(name), g_ref=CASES[name][1])


def relative(fit: float, true: float) -> float:
    return abs(fit - true) / abs(true)


def step_ratio(p: DeviceParams) -> float:
    """Up step over down step at g_ref."""
    up, down = nominal_steps(p.dw_min, p.up_down)
    return up / down


# -- recovery ---------------------------------------------------------------------------------


def test_fit_recovers_step_asymmetry_and_noise_within_10_percent(
    fitted: tuple[DeviceParams, DeviceFit],
) -> None:
    true, fit = fitted
    p = fit.params
    assert p.model == true.model
    assert p.noise_mode == true.noise_mode
    assert relative(p.dw_min, true.dw_min) < 0.10
    assert relative(step_ratio(p), step_ratio(true)) < 0.10
    if true.up_down:
        assert relative(p.up_down, true.up_down) < 0.10
    else:
        assert abs(p.up_down) < 0.02
    assert relative(p.dw_min_std, true.dw_min_std) < 0.10
    if true.read_noise:
        assert relative(p.read_noise, true.read_noise) < 0.10
    else:
        assert p.read_noise < 0.001
    # The reported uncertainties cover the error (3 standard errors).
    for field in ("dw_min", "up_down", "dw_min_std"):
        err = abs(getattr(p, field) - getattr(true, field))
        assert err <= 3 * fit.uncertainty[field] + 1e-3 * abs(getattr(true, field)), field


def test_fit_recovers_bounds_slopes_and_spreads_loosely(
    fitted: tuple[DeviceParams, DeviceFit],
) -> None:
    """Looser: 20 devices sample the spread of the bounds and slopes only so well (the
    standard error of a 20-device mean at a spread of 0.3 is 7 %, of a standard deviation 16 %)."""
    true, fit = fitted
    p = fit.params
    span = true.g_max - true.g_min
    assert abs(p.g_min - true.g_min) < 0.1 * span
    assert abs(p.g_max - true.g_max) < 0.1 * span
    if true.g_ref != CASES[true.name][1]:  # the fit chose g_ref: the symmetry point
        assert abs(p.g_ref - true.g_ref) < 0.02 * span
    assert abs(p.slope_up - true.slope_up) < 0.1
    assert abs(p.slope_down - true.slope_down) < 0.1
    assert relative(p.dw_min_dtod, true.dw_min_dtod) < 0.35
    assert relative(p.bounds_dtod, true.bounds_dtod) < 0.35
    assert abs(p.up_down_dtod - true.up_down_dtod) < 0.02
    assert abs(p.slope_dtod - true.slope_dtod) < 0.05


@pytest.mark.parametrize("name", ["reram-taox", "reram-soft-bounds"])
def test_fit_matches_the_drawn_devices_closely(name: str) -> None:
    """Against the devices actually drawn (what a fit can know), far within 10 %."""
    true = get_device(name)
    fit = fit_device(simulate(name, seed=0), g_ref=CASES[name][1])
    # simulate_measurement draws the devices first from its generator: the same draw.
    drawn = sample_device_array(true, (DEVICES,), torch.Generator().manual_seed(0))
    asym = asymmetry_from_steps(drawn.dw_up.double().numpy(), drawn.dw_down.double().numpy())
    p = fit.params
    assert relative(p.dw_min, asym.dw_min) < 0.04
    fit_up, fit_down = nominal_steps(p.dw_min, p.up_down)
    assert relative(fit_up, float(drawn.dw_up.mean())) < 0.04
    assert relative(fit_down, float(drawn.dw_down.mean())) < 0.04
    # up_down is 1 - weaker/stronger step: a 3 % error of one step is 0.02 in it.
    assert abs(p.up_down - asym.up_down) < 0.025
    assert relative(p.dw_min_dtod, float(asym.gain.std(ddof=1))) < 0.1


def test_stuck_devices_are_left_out_and_counted() -> None:
    m = simulate("reram-taox")
    g = m.conductance.copy()
    first = m.device == 0
    g[first] = 1.0 + 0.01 * np.random.default_rng(0).standard_normal(int(first.sum()))
    fit = fit_device(dataclasses.replace(m, conductance=g), g_ref=0.5)
    assert fit.stuck == ("d00",)
    assert fit.params.stuck_high == pytest.approx(1 / DEVICES)
    assert fit.params.stuck_low == 0.0
    assert relative(fit.params.dw_min, 0.025) < 0.10


def test_power_step_on_request_recovers_its_exponent() -> None:
    """A pcm-like device without abrupt RESET (read noise a quarter of a step; at one step the
    exponent comes out biased, see insitu.devices.fit)."""
    true = get_device("pcm").replace(
        abrupt_reset=False,
        dw_min=0.02,
        slope_up=0.8,
        slope_down=0.8,
        dw_min_dtod=0.2,
        read_noise=0.005,
        drift_nu=0.0,
        drift_nu_dtod=0.0,
    )
    gen = torch.Generator().manual_seed(SEED)
    m = simulate_measurement(true, DEVICES, CYCLES, 300, gen)
    fit = fit_device(m, model="power-step", g_ref=0.5)
    p = fit.params
    assert p.model == "power-step"
    assert relative(p.exponent, 2.0) < 0.10
    assert relative(p.dw_min, true.dw_min) < 0.10
    assert abs(p.up_down) < 0.03
    assert relative(p.dw_min_std, true.dw_min_std) < 0.10
    assert abs(p.slope_up - 0.8) < 0.1 and abs(p.slope_down - 0.8) < 0.1
    assert "power-step" in fit.scores
    # Not chosen by itself.
    assert "power-step" not in fit_device(m, g_ref=0.5).scores


def test_model_can_be_forced_and_unknown_model_is_named() -> None:
    m = simulate("reram-taox")
    assert fit_device(m, model="soft-bounds").params.model == "soft-bounds"
    with pytest.raises(ConfigError, match="cannot fit model 'ideal'"):
        fit_device(m, model="ideal")
    with pytest.raises(ConfigError, match="'nonsense'"):
        fit_device(m, model="nonsense")


# -- measurement files ------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "m.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def tiny_csv(pulses: int = 6, direction_words: tuple[str, str] = ("up", "down")) -> str:
    lines = ["device,cycle,pulse,direction,conductance (uS),temperature"]
    for dev in ("a", "b"):
        g, k = 10.0, 0
        lines.append(f"{dev},1,{k},none,{g},300")
        for word, step in ((direction_words[0], 1.0), (direction_words[1], -1.0)):
            for _ in range(pulses):
                k += 1
                g += step
                lines.append(f"{dev},1,{k},{word},{g},300")
    return "\n".join(lines) + "\n"


def test_csv_round_trip_any_order_extra_columns_and_unit(tmp_path: Path) -> None:
    m = simulate("reram-taox")
    path = write_measurement(m, tmp_path / "m.csv")
    back = read_measurement(path)
    assert back.devices == m.devices
    for f in ("device", "cycle", "pulse", "direction", "conductance"):
        np.testing.assert_array_equal(getattr(back, f), getattr(m, f))
    assert back.unit == "reram-taox unit"
    # Shuffled rows, extra column, signed directions, a unit in brackets.
    lines = tiny_csv(direction_words=("+1", "-1")).splitlines()
    lines[0] = lines[0].replace("(uS)", "[mS]")
    body = lines[1:]
    np.random.default_rng(0).shuffle(body)
    tiny = read_measurement(write(tmp_path, "\n".join([lines[0], *body]) + "\n"))
    assert tiny.unit == "mS"
    assert tiny.direction.tolist()[:13] == [0] + [1] * 6 + [-1] * 6
    assert tiny.conductance.tolist()[:3] == [10.0, 11.0, 12.0]


MALFORMED = {
    "empty": ("", None, "empty file"),
    "header only": ("device,cycle,pulse,direction,conductance\n", None, "no reads"),
    "missing column": ("device,cycle,pulse,conductance\na,1,0,1.0\n", 1, "missing column"),
    "non-numeric": (None, 3, "conductance 'high' is not a number"),
    "unknown direction": (None, 4, "unknown direction 'sideways'"),
    "non-integer pulse": (None, 5, "pulse '2.5' is not an integer"),
    "too few pulses": (None, 2, "has 2 up pulse(s)"),
    "gap": (None, 6, "pulse 5 follows pulse 3"),
    "duplicate": (None, 8, "pulse 5 again (first on line 7)"),
    "too few fields": (None, 3, "2 fields"),
}


def malformed(case: str) -> str:
    text = tiny_csv()
    lines = text.splitlines()
    if case == "non-numeric":
        lines[2] = "a,1,1,up,high,300"
    elif case == "unknown direction":
        lines[3] = "a,1,2,sideways,12.0,300"
    elif case == "non-integer pulse":
        lines[4] = "a,1,2.5,up,13.0,300"
    elif case == "gap":
        del lines[5]  # pulse 5 of device a
    elif case == "duplicate":
        lines[7] = "a,1,5,up,15.0,300"
    elif case == "too few fields":
        lines[2] = "a,1"
    elif case == "too few pulses":
        return tiny_csv(pulses=2)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_name_the_file_line_and_fault(tmp_path: Path, case: str) -> None:
    text, line, what = MALFORMED[case]
    path = write(tmp_path, malformed(case) if text is None else text)
    with pytest.raises(DataError) as info:
        read_measurement(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert what in message
    if line is not None:
        assert f"line {line}:" in message


def test_binary_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(PNG_MAGIC + bytes(range(256)))
    with pytest.raises(DataError, match="not a text"):
        read_measurement(path)


# -- preset files -----------------------------------------------------------------------------


def test_preset_file_round_trips_through_get_device(tmp_path: Path) -> None:
    fit = fit_device(simulate("reram-taox"), g_ref=0.5, name="my-taox")
    path = write_preset(fit.params, tmp_path / "my-taox.yaml", fit={"residual_rms": 0.01})
    assert get_device(path) == fit.params
    assert get_device(str(path)) == fit.params
    assert "fitted by insitu devices fit" in get_device(path).source
    # The fitted preset drives the physics like any preset.
    params = get_device(path)
    gen = torch.Generator().manual_seed(0)
    array = sample_device_array(params, (8,), gen)
    g = torch.full((8,), params.g_ref)
    after = apply_pulses(params, array, g, torch.full((8,), 3), gen)
    assert bool((after > g).all())


BAD_PRESETS = {
    "missing.yaml": (None, "does not exist"),
    "yaml.yaml": ("model: [linear-step\n", "not valid YAML"),
    "list.yaml": ("- 1\n- 2\n", "expected a mapping"),
    "unknown.yaml": ("model: linear-step\nwidth: 3\n", "unknown parameter(s) width"),
    "type.yaml": ("model: linear-step\ndw_min: small\n", "dw_min = 'small' is not a"),
    "nomodel.yaml": ("dw_min: 0.01\n", "no model"),
    "range.yaml": ("model: linear-step\ng_ref: 5.0\n", "need g_min < g_ref < g_max"),
    "model.yaml": ("model: quantum\n", "unknown device model 'quantum'"),
}


@pytest.mark.parametrize("name", sorted(BAD_PRESETS))
def test_bad_preset_file_is_one_config_error(tmp_path: Path, name: str) -> None:
    text, what = BAD_PRESETS[name]
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_preset(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert what in message


def test_minimal_preset_file_takes_defaults_and_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "bench.yml"
    path.write_text("model: constant-step\ndw_min: 0.01\ng_max: 2\n")
    params = get_device(path)
    assert params.name == "bench"
    assert params.g_max == 2.0 and isinstance(params.g_max, float)


# -- command line -----------------------------------------------------------------------------


def test_cli_fit_writes_preset_and_png(tmp_path: Path) -> None:
    csv = write_measurement(simulate("reram-taox"), tmp_path / "taox.csv")
    out, png = tmp_path / "taox.yaml", tmp_path / "taox.png"
    result = CliRunner().invoke(
        cli.app,
        ["devices", "fit", str(csv), "--out", str(out), "--plot", str(png), "--g-ref", "0.5"],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    assert png.read_bytes().startswith(PNG_MAGIC)
    params = get_device(out)
    assert params.model == "linear-step"
    assert relative(params.dw_min, 0.025) < 0.10
    assert "dw_min" in result.output and "linear-step" in result.output
    # 80 columns, but for the lines naming the files written (kept whole to copy).
    assert all(len(line) <= 80 for line in result.output.splitlines() if str(tmp_path) not in line)
    assert f"saved {out}" in result.output and f"saved {png}" in result.output


def test_cli_fit_defaults_beside_the_csv(tmp_path: Path) -> None:
    csv = write_measurement(simulate("reram-taox"), tmp_path / "taox.csv")
    result = CliRunner().invoke(cli.app, ["devices", "fit", str(csv)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "taox-preset.yaml").is_file()
    assert (tmp_path / "taox-fit.png").read_bytes().startswith(PNG_MAGIC)
    assert get_device(tmp_path / "taox-preset.yaml").name == "taox"


def test_cli_malformed_csv_is_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, malformed("unknown direction"))
    monkeypatch.setattr(sys, "argv", ["insitu", "devices", "fit", str(path)])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "line 4" in err and "unknown direction" in err


def test_a_fitted_preset_file_trains_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = write_measurement(simulate("reram-taox"), tmp_path / "taox.csv")
    preset = tmp_path / "taox.yaml"
    fit = ["devices", "fit", str(csv), "--out", str(preset), "--g-ref", "0.5"]
    assert CliRunner().invoke(cli.app, fit).exit_code == 0
    monkeypatch.chdir(tmp_path)  # given relative, recorded absolute: a resume finds it anywhere
    small = [
        "--epochs",
        "1",
        "--instances",
        "1",
        "--set",
        "limit_train=60",
        "--set",
        "limit_test=30",
    ]
    result = CliRunner().invoke(
        cli.app, ["train", "--device", "taox.yaml", *small, "--quiet", "--runs", "runs"]
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.endswith("-analog-sgd-taox-digits")  # named by the file's stem
    import yaml

    assert yaml.safe_load((run_dir / "config.yaml").read_text())["device"] == str(preset)
    missing = CliRunner().invoke(cli.app, ["train", "--device", "nope.yaml", *small, "--quiet"])
    assert missing.exit_code != 0 and "nope.yaml" in str(missing.exception)
