"""experiments/_env.py: the `nrtjax` command re-runs itself with glibc's malloc on transparent
huge pages. The oracle is the kernel: the huge pages a large malloc'd buffer gets
(`AnonHugePages` in /proc/self/smaps_rollup)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments._env import HUGEPAGE_TUNABLE, malloc_hugepages_apply

ROOT = Path(__file__).resolve().parent.parent

# Allocates and touches 64 MiB with malloc, then prints GLIBC_TUNABLES and the kB of
# anonymous huge pages the process holds.
CHILD = """
import ctypes, os
from experiments._env import reexec_with_malloc_hugepages
print("start", flush=True)
reexec_with_malloc_hugepages()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
n = 64 << 20
p = libc.malloc(ctypes.c_size_t(n))
ctypes.memset(p, 1, n)
huge = 0
with open("/proc/self/smaps_rollup") as f:
    for line in f:
        if line.startswith("AnonHugePages:"):
            huge = int(line.split()[1])
print(os.environ.get("GLIBC_TUNABLES", ""))
print(huge)
"""


def _env_without_tunables() -> dict:
    """This process's environment with no GLIBC_TUNABLES (`make test` sets one)."""
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _child(tunables):
    env = _env_without_tunables()
    if tunables is not None:
        env["GLIBC_TUNABLES"] = tunables
    r = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    return lines[-3], int(lines[-2]), lines.count("start")


needs_madvise = pytest.mark.skipif(
    not malloc_hugepages_apply({}), reason="needs Linux, glibc >= 2.35 and THP in madvise mode")


@needs_madvise
def test_reexec_gives_malloc_huge_pages():
    tunables, huge_kb, starts = _child(None)
    assert tunables == f"{HUGEPAGE_TUNABLE}=1"
    assert starts == 2  # ran once as started, once re-executed
    # At least one 2 MiB page (the kernel may fall back to small pages when memory is
    # fragmented; without the tunable the same buffer gets none, see the next test).
    assert huge_kb >= 2048, huge_kb


@needs_madvise
def test_reexec_keeps_other_tunables_and_respects_opt_out():
    tunables, huge_kb, starts = _child("glibc.malloc.arena_max=2")
    assert tunables == f"glibc.malloc.arena_max=2:{HUGEPAGE_TUNABLE}=1" and huge_kb > 0 and starts == 2
    tunables, huge_kb, starts = _child(f"{HUGEPAGE_TUNABLE}=0")
    assert tunables == f"{HUGEPAGE_TUNABLE}=0" and huge_kb == 0 and starts == 1


def test_apply_only_where_it_helps(tmp_path):
    modes = {}
    for mode in ("always", "madvise", "never"):
        modes[mode] = tmp_path / mode
        modes[mode].write_text(" ".join(f"[{m}]" if m == mode else m for m in ("always", "madvise", "never")))
    glibc = ("glibc", "2.36")
    if sys.platform == "linux":
        assert malloc_hugepages_apply({}, libc=glibc, thp_mode_file=modes["madvise"])
    assert not malloc_hugepages_apply({}, libc=glibc, thp_mode_file=modes["always"])
    assert not malloc_hugepages_apply({}, libc=glibc, thp_mode_file=modes["never"])
    assert not malloc_hugepages_apply({}, libc=glibc, thp_mode_file=tmp_path / "missing")
    assert not malloc_hugepages_apply({}, libc=("glibc", "2.31"), thp_mode_file=modes["madvise"])
    assert not malloc_hugepages_apply({}, libc=("", ""), thp_mode_file=modes["madvise"])
    assert not malloc_hugepages_apply({"GLIBC_TUNABLES": f"{HUGEPAGE_TUNABLE}=0"}, libc=glibc,
                                      thp_mode_file=modes["madvise"])


@needs_madvise
@pytest.mark.parametrize("module", ["experiments._cli", "experiments.simulate"])
def test_job_process_runs_with_the_tunable(module):
    """`nrtjax NAME` and `python -m experiments.NAME` both run the job with the tunable; the
    job process's environment is read back through a Hydra interpolation of it."""
    env = _env_without_tunables()
    job = ["simulate"] if module == "experiments._cli" else []
    r = subprocess.run([sys.executable, "-m", module, *job, "--cfg", "hydra", "--resolve",
                        "hydra.job.name=${oc.env:GLIBC_TUNABLES,unset}"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"name: {HUGEPAGE_TUNABLE}=1" in r.stdout.split("\n  job:\n", 1)[-1], r.stdout
