"""Make the documentation's figures: each job run small, its figure copied to docs/figures/.

    python scripts/make_figures.py            # all figures
    python scripts/make_figures.py duet sweep # some of them
    python scripts/make_figures.py fit_recovery_true_vs_fitted fit_recovery_heatmaps \
        --run fit_recovery=outputs/recovery   # copied from a study's output folder

Each figure is what the job itself draws, so the docs stay true to the code. The jobs run at
sizes that take seconds to a minute each (the sizes are in FIGURES below, so the docs' numbers
come from the commands on each page, not from these figures). PNGs are re-encoded with a
256-colour palette and, if still over 150 KB, scaled down, to keep the repository small.
"""

import argparse
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / "docs" / "figures"
MAX_BYTES = 150_000

# name -> (job, overrides, figure file inside the run or out directory)
FIGURES = {
    "simulate": ("simulate", ["model=hopf", "model.alpha=0.2", "stimulus.duration=10"],
                 "trajectory.png"),
    "beat_detection": ("beat_detection", ["duration=12"], "beat_detection.png"),
    "hopf_portraits": ("hopf_portraits", ["n_forcing=12", "duration=16", "portrait_duration=8"],
                       "hopf_portraits.png"),
    "ashle_asynchrony": ("ashle_asynchrony", ["n_subjects=6", "duration=20"],
                         "ashle_asynchrony.png"),
    "sweep": ("sweep", ["grid.alpha=linspace(-1,0.5,16)", "grid.beta1=linspace(-4,0,8)",
                        "model.n=17", "stimulus.fs=32", "stimulus.duration=8"], "heatmap.png"),
    "duet": ("duet", ["duration=8", "sr=22050"], "duet.png"),
    "groove": ("demo", ["clip_seconds=12", "duet_seconds=2"], "demo_clip_groove_analysis.png"),
    # Figures of a study too long to rerun here (None: no overrides): copied from the
    # output folder of the command on its page, given as --run JOB=DIR.
    "fit_recovery_true_vs_fitted": ("fit_recovery", None, "fit_recovery_true_vs_fitted.png"),
    "fit_recovery_heatmaps": ("fit_recovery", None, "fit_recovery_heatmaps.png"),
    "fit_posterior_pairs": ("fit", None, "posterior_pairs.png"),
    # Not a job: the output folder of scripts/sbc_fit.py (--run sbc_fit=DIR).
    "sbc_fit_ranks": ("sbc_fit", None, "sbc_ranks.png"),
}


def shrink(src: Path, dest: Path) -> int:
    """Write `src` to `dest` as a palette PNG no larger than MAX_BYTES; return its size."""
    image = Image.open(src).convert("RGB")
    while True:
        buffer = io.BytesIO()
        palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        palette.save(buffer, "PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES or image.width < 400:
            break
        image = image.resize((int(image.width * 0.85), int(image.height * 0.85)), Image.LANCZOS)
    tmp = dest.with_suffix(".tmp.png")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, dest)  # staged, then renamed
    return buffer.tell()


def _copy_figure(name: str, run_dir: Path, missing: str, note: str = "") -> Path:
    """Shrink figure `name`'s file found under `run_dir` into docs/figures."""
    figure = FIGURES[name][2]
    found = sorted(run_dir.rglob(figure))
    if not found:
        raise SystemExit(f"make_figures: {missing} {figure} under {run_dir}")
    dest = DEST / f"{name}.png"
    size = shrink(found[0], dest)
    print(f"{dest.relative_to(ROOT)}: {size / 1000:.0f} KB{note}")
    return dest


def from_run(name: str, run_dir: Path) -> Path:
    """Copy figure `name` from the output folder `run_dir` of its job's documented run."""
    return _copy_figure(name, run_dir, "no", f" (from {run_dir})")


def make(name: str, workdir: Path) -> Path:
    job, overrides, _ = FIGURES[name]
    run_dir = workdir / name
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", WANDB_MODE="disabled")
    cmd = [sys.executable, "-m", "experiments._cli", job, *overrides, "wandb.mode=disabled",
           f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"make_figures: {' '.join(cmd[2:])} failed:\n{proc.stderr[-3000:]}")
    return _copy_figure(name, run_dir, f"{job} wrote no")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"figures to make (default: all): {', '.join(FIGURES)}")
    parser.add_argument("--run", action="append", default=[], metavar="JOB=DIR",
                        help="output folder of JOB's documented run, for the figures copied "
                             "from one (e.g. fit_recovery=outputs/recovery)")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; available: {', '.join(FIGURES)}")
    runs = dict(r.split("=", 1) for r in args.run)
    DEST.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names or list(FIGURES):
            job, overrides, _ = FIGURES[name]
            if overrides is not None:
                make(name, Path(tmp))
            elif job in runs:
                from_run(name, Path(runs[job]))
            elif args.names:
                parser.error(f"{name} is copied from a {job} run: add --run {job}=DIR")
            else:
                print(f"{name}: skipped (copied from a {job} run: --run {job}=DIR)")


if __name__ == "__main__":
    main()
