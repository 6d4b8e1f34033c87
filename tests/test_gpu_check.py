"""scripts/gpu_check.py runs on the CPU, scaled down: figures, checks and JSON."""

import json
import math

import numpy as np

from .helpers import load_script


def _gpu_check():
    return load_script("gpu_check")


def test_gpu_check_on_cpu_scaled_down(tmp_path, capsys):
    gc = _gpu_check()
    out = tmp_path / "gpu_check.json"
    res = gc.main(["--scale", "0.002", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    assert res["ok"] and res["platform"] == "cpu" and res["scale"] == 0.002
    for name, tol in (("float32", 1e-4), ("float64", 1e-9)):
        r = res["sweep"][name]
        assert r["dtype"] == name and r["oscillators"] == 289 and r["members"] == 20
        assert r["steps"] == 256      # max(1 s, 60 s x 0.002) at 256 Hz
        assert math.isclose(r["oscillator_steps_per_s"], 20 * 289 * 256 / r["warm_s"])
        assert r["ok"] and r["max_abs_diff_vs_cpu_float64"] <= tol == r["tolerance"]
        assert r["checked_members"][0] == 0 and r["checked_members"][-1] == 19
    s = res["surrogate_training"]
    assert s["steps_per_s"] > 0 and s["check"] == "same device" and len(s["first_losses"]) == 3
    assert np.all(np.isfinite(s["first_losses"]))
    b = res["beat_network_training"]
    assert b["steps_per_s"] > 0 and b["check"] == "same device" and len(b["first_losses"]) == 3
    assert b["batch"] == 2 and b["crop"] == 200 and np.all(np.isfinite(b["first_losses"]))
    table = capsys.readouterr().out
    assert "osc-steps/s" in table and "steps/s" in table and "beat network training" in table
    assert "all checks passed" in table


def test_gpu_check_sweep_check_fails_outside_its_tolerance(monkeypatch):
    """The float32 sweep differs from the float64 CPU reference by more than zero: with a
    zero tolerance the check must report the failure."""
    gc = _gpu_check()
    monkeypatch.setitem(gc.SWEEP_TOL, "float32", 0.0)
    args = type("A", (), dict(n=17, duration=1.0, fs=256.0, members=4))()
    import jax

    r = gc.run_sweep(np.float32, args, jax.devices("cpu")[0])
    assert r["max_abs_diff_vs_cpu_float64"] > 0 and not r["ok"]
