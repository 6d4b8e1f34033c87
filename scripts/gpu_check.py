"""GPU check: sweep and training throughput on the accelerator, results checked on the CPU.

    python scripts/gpu_check.py [--json gpu_check.json]          # full size on a GPU (<= 8 min)
    python scripts/gpu_check.py --scale 0.01                     # scaled down (the CPU default)

Measures, on the default JAX backend (`jax.devices()[0]`; all local devices through
`nrt.sharded_vmap`):

1. a GrFNN sweep, as `nrtjax sweep` runs it: 10,000 members (alpha from -1 to 0.2), 289
   oscillators (0.25-16 Hz, log-spaced), 60 s of a 2 Hz accented pulse train at 256 Hz, RK4,
   the mean amplitude of each oscillator over the last half saved once per second; in
   float32 and in float64, as oscillator-steps per second (members x oscillators x steps /
   the warm wall time, compilation excluded and reported apart);
2. surrogate training (`nrt.surrogate.make_step_fn`, the shipped TCN, batch 16 x 1024
   samples, float32): steps per second, warm (scaled below 0.5: a small TCN, batch 4 x 256);
3. beat-network training (`nrtjax.beats.train.make_step_fn`, the shipped BeatNet, batch 8 x
   1500 frames as `nrtjax train_beats` trains it, float32): steps per second, warm (scaled
   below 0.5: a small BeatNet, batch 2 x 200 frames).

Checks (pass/fail in the table and the JSON; exit status 1 if any fails):
- sweep: 8 members spread over the grid, integrated one by one by `nrt.simulate` on the CPU
  in float64, against the accelerator's members: max |difference| of the readout
  <= 1e-9 (float64 run) and <= 1e-4 (float32 run). (Readouts are amplitudes up to about
  0.5; float32's own error at full size is 4.5e-6 on the CPU, from
  `python scripts/gpu_check.py --scale 1 --members 8` on a CPU-only machine.)
- surrogate and beat network: the first 3 training steps' losses from the same state and data on the
  accelerator and on the CPU agree to 1e-3 relative. On a CPU-only machine this comparison
  is against itself and is reported as "same device".

`--scale S` multiplies the member count, the duration and the surrogate's steps by S
(default 1 on an accelerator, 0.01 on the CPU); `--json PATH` writes every figure.
"""

import argparse
import platform
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nrtjax as nrt  # noqa: E402


SWEEP_TOL = {"float64": 1e-9, "float32": 1e-4}   # max |readout difference| vs CPU float64
TRAIN_RTOL = 1e-3                                  # surrogate losses, accelerator vs CPU
CHECK_MEMBERS = 8


def _timed(fn):
    t = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - t


def member_fn(freqs, sig, dt, save):
    def one(alpha):
        model = nrt.GrFNN(freqs, alpha=alpha, beta1=-1.0, beta2=-1.0, eps=1.0)
        ys = nrt.simulate(model, sig, dt=dt, saveat=save, throw=False).ys
        return jnp.mean(jnp.abs(ys), axis=0)
    return one


def sweep_problem(dtype, n, duration, fs, members):
    freqs = np.asarray(nrt.log_freqs(0.25, 16.0, n), dtype)
    onsets = np.arange(0.0, duration, 0.5)
    accents = np.where(np.arange(onsets.size) % 4 == 0, 1.0, 0.6)
    sig = nrt.pulse_train(onsets, duration, fs, velocities=accents)
    sig = nrt.Signal(jnp.asarray(sig.ts, dtype), jnp.asarray(sig.xs, dtype))
    steps = sig.xs.shape[0] - 1
    half = steps // 2
    save = np.arange(half, steps + 1, max(1, int(fs))) / fs
    alphas = np.linspace(-1.0, 0.2, members).astype(dtype)
    return freqs, sig, 1.0 / fs, np.asarray(save, dtype), alphas, steps


def cpu_reference(a, cpu):
    """A few members spread over the grid, one by one by `nrt.simulate` on the CPU in
    float64: (their indices, their readouts)."""
    spread = np.linspace(0, a.members - 1, min(CHECK_MEMBERS, a.members))
    idx = np.unique(spread.round().astype(int))
    with jax.default_device(cpu):   # every array of the reference on the CPU
        f64 = sweep_problem(np.float64, a.n, a.duration, a.fs, a.members)
        ref_fn = jax.jit(member_fn(*f64[:4]))
        ref = np.stack([np.asarray(ref_fn(jnp.float64(f64[4][i]))) for i in idx])
    return idx, ref


def run_sweep(dtype, a, cpu, reference=None):
    freqs, sig, dt, save, alphas, steps = sweep_problem(dtype, a.n, a.duration, a.fs, a.members)
    fn = member_fn(freqs, sig, dt, save)
    sweep = nrt.sharded_vmap(fn)
    out, first = _timed(lambda: sweep(jnp.asarray(alphas)))
    out, warm = _timed(lambda: sweep(jnp.asarray(alphas)))
    got = np.asarray(out, np.float64)
    idx, ref = cpu_reference(a, cpu) if reference is None else reference
    err = float(np.max(np.abs(got[idx] - ref)))
    finite = bool(np.all(np.isfinite(got)))
    osc_steps = a.members * a.n * steps
    return {"dtype": np.dtype(dtype).name, "members": a.members, "oscillators": a.n,
            "steps": steps, "compile_and_first_run_s": first, "warm_s": warm,
            "oscillator_steps_per_s": osc_steps / warm, "checked_members": idx.tolist(),
            "max_abs_diff_vs_cpu_float64": err, "tolerance": SWEEP_TOL[np.dtype(dtype).name],
            "all_finite": finite,
            "ok": finite and err <= SWEEP_TOL[np.dtype(dtype).name]}


def time_training(step, init_state, data, a, cpu, on_cpu, **info) -> dict:
    """Warm training steps per second of `step(state, data) -> (state, loss, parts)` on the
    default device, from `init_state()` (called under the device's context), and the first
    3 losses checked against the same steps on the CPU (against themselves on a CPU-only
    machine). `info` (model, batch, crop) leads the returned record."""
    def losses(device, n):
        with jax.default_device(device):
            # Only the arrays move (a module's Python scalars stay what they are).
            state, arr = jax.tree.map(
                lambda v: jax.device_put(v, device) if isinstance(v, jax.Array) else v,
                (init_state(), data))
            out = []
            for _ in range(n):
                state, loss, _ = step(state, arr)
                out.append(float(loss))
            return out, state, arr

    acc_losses, state, arr = losses(jax.devices()[0], 3)
    t = time.perf_counter()
    for _ in range(a.train_steps):
        state, loss, _ = step(state, arr)
    jax.block_until_ready(loss)
    warm = time.perf_counter() - t
    res = {**info, "steps_timed": a.train_steps, "steps_per_s": a.train_steps / warm,
           "first_losses": acc_losses}
    if on_cpu:
        res.update(check="same device", ok=bool(np.all(np.isfinite(acc_losses))))
    else:
        cpu_losses, _, _ = losses(cpu, 3)
        rel = float(np.max(np.abs(np.subtract(acc_losses, cpu_losses)) / np.abs(cpu_losses)))
        res.update(check=f"vs CPU, rtol {TRAIN_RTOL:g}", cpu_losses=cpu_losses,
                   max_rel_diff=rel, ok=rel <= TRAIN_RTOL)
    return res


def run_surrogate(a, cpu, on_cpu):
    spec = nrt.surrogate.DatasetSpec(n_songs=a.songs, duration=a.song_seconds)
    data = nrt.surrogate.make_dataset(spec, key=jr.key(0))
    arrays = nrt.surrogate.training_arrays(data)
    opt = nrt.make_optimizer(lr=2e-3, total_steps=100, warmup_steps=10,
                             weight_decay=1e-4, clip_norm=1.0)
    step = nrt.surrogate.make_step_fn(opt, nrt.surrogate.LossWeights(), batch_size=a.batch,
                                      crop=a.crop, warm=a.crop // 2)

    def model():
        if a.shipped_tcn:
            return nrt.surrogate.load()
        # Scaled down: a small TCN of the same kind (compiles in seconds on a CPU).
        return nrt.surrogate.Surrogate(nrt.surrogate.TCN(hidden=8, n_blocks=2, heads=0,
                                                         dtype=jnp.float32, key=jr.key(2)))

    return time_training(
        step, lambda: nrt.surrogate.init_state(model(), opt, key=jr.key(1)), arrays, a, cpu,
        on_cpu, model="shipped TCN" if a.shipped_tcn else "small TCN (hidden 8, 2 blocks)",
        batch=a.batch, crop=a.crop)


def run_beatnet(a, cpu, on_cpu):
    """Beat-network training steps (`nrtjax.beats.train.make_step_fn`, the step that
    `nrtjax train_beats` runs) on a synthetic spectrogram: 64 log-mel-like bands with a
    broadband onset at every beat of 120 BPM, beat and downbeat targets."""
    from nrtjax import _train
    from nrtjax.beats import train as btrain
    from nrtjax.beats.features import N_BANDS
    from nrtjax.beats.network import BeatNet

    frames = 4 * a.beat_crop
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 0.3, (N_BANDS, frames)).astype(np.float32)
    y = np.zeros((2, frames), np.float32)
    y[0, ::50] = 1.0      # 120 BPM at 100 frames/s
    y[1, ::200] = 1.0     # 4/4
    x[:, ::50] += 2.0
    data = {"x": jnp.asarray(x), "y": jnp.asarray(y), "mask": jnp.ones(frames, jnp.float32),
            "starts": jnp.arange(frames - a.beat_crop + 1, dtype=jnp.int32)}
    opt = nrt.make_optimizer(lr=2e-3, total_steps=100, warmup_steps=10, weight_decay=1e-4,
                             clip_norm=1.0, decay_mask=btrain.decay_mask)
    step = btrain.make_step_fn(opt, btrain.BeatLossWeights(), batch_size=a.beat_batch,
                               crop=a.beat_crop)
    # The shipped architecture at scale >= 0.5; scaled down, a small network of the kind.
    arch = {"hidden": 32, "n_blocks": 8} if a.shipped_tcn else {"hidden": 8, "n_blocks": 2}

    def init_state():
        model = BeatNet(bands=N_BANDS, **arch, dtype=jnp.float32, key=jr.key(3))
        return _train.init_state(model, opt, key=jr.key(4))

    return time_training(step, init_state, data, a, cpu, on_cpu,
                         model=f"BeatNet hidden {arch['hidden']}, {arch['n_blocks']} blocks",
                         batch=a.beat_batch, crop=a.beat_crop)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=None,
                   help="scale members, duration and training steps (default: 1 on an "
                        "accelerator, 0.01 on the CPU)")
    p.add_argument("--members", type=int, default=10_000)
    p.add_argument("--n", type=int, default=289)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--fs", type=float, default=256.0)
    p.add_argument("--train-steps", type=int, default=50)
    p.add_argument("--json", type=str, default=None, help="write the results here")
    a = p.parse_args(argv)
    dev = jax.devices()[0]
    on_cpu = dev.platform == "cpu"
    cpu = jax.devices("cpu")[0]
    scale = a.scale if a.scale is not None else (0.01 if on_cpu else 1.0)
    if not 0 < scale <= 1:
        p.error(f"--scale {scale} must lie in (0, 1]")
    a.members = max(jax.local_device_count(), round(a.members * scale))
    a.duration = max(1.0, a.duration * scale)
    a.train_steps = max(2, round(a.train_steps * scale))
    # The shipped surrogate's training batch (16 x 1024 samples) at scale 1.
    a.shipped_tcn = scale >= 0.5
    a.batch, a.crop = (16, 1024) if a.shipped_tcn else (4, 256)
    a.songs, a.song_seconds = a.batch, 2.0 * a.crop / 256.0 + 2.0
    a.beat_batch, a.beat_crop = (8, 1500) if a.shipped_tcn else (2, 200)

    head = (f"gpu_check: {jax.local_device_count()} x {dev.device_kind} ({dev.platform}), "
            f"jax {jax.__version__}, scale {scale:g}")
    print(head, flush=True)
    res = {"device": dev.device_kind, "platform": dev.platform,
           "devices": jax.local_device_count(), "jax": jax.__version__,
           "host": platform.node(), "scale": scale, "sweep": {}}
    start = time.perf_counter()
    reference = cpu_reference(a, cpu)
    for dtype in (np.float32, np.float64):
        res["sweep"][np.dtype(dtype).name] = run_sweep(dtype, a, cpu, reference)
    res["surrogate_training"] = run_surrogate(a, cpu, on_cpu)
    res["beat_network_training"] = run_beatnet(a, cpu, on_cpu)
    res["total_s"] = time.perf_counter() - start
    res["ok"] = (all(r["ok"] for r in res["sweep"].values())
                 and res["surrogate_training"]["ok"] and res["beat_network_training"]["ok"])

    rows = [("what", "figure", "check")]
    for name, r in res["sweep"].items():
        rows.append((f"GrFNN sweep {name}: {r['members']} x {r['oscillators']} osc x "
                     f"{r['steps']} steps", f"{r['oscillator_steps_per_s']:.3e} osc-steps/s",
                     f"{'ok' if r['ok'] else 'FAIL'} max|diff| "
                     f"{r['max_abs_diff_vs_cpu_float64']:.1e} <= {r['tolerance']:g}"))
        rows.append((f"  (compile + first run {r['compile_and_first_run_s']:.1f} s, warm "
                     f"{r['warm_s']:.2f} s)", "", ""))
    s = res["surrogate_training"]
    rows.append((f"surrogate training ({s['model']}), batch {s['batch']} x {s['crop']}",
                 f"{s['steps_per_s']:.2f} steps/s", f"{'ok' if s['ok'] else 'FAIL'} {s['check']}"))
    b = res["beat_network_training"]
    rows.append((f"beat network training ({b['model']}), batch {b['batch']} x {b['crop']}",
                 f"{b['steps_per_s']:.2f} steps/s", f"{'ok' if b['ok'] else 'FAIL'} {b['check']}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print(f"total {res['total_s']:.1f} s; {'all checks passed' if res['ok'] else 'CHECKS FAILED'}")
    if a.json:
        nrt.io.write_json(a.json, res)
    return res


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
