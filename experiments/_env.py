"""Process set-up for the `nrtjax` command and the benchmarks, importable without JAX.

glibc's malloc on transparent huge pages. XLA:CPU allocates every output with glibc's
`malloc`, and a buffer that large comes from a fresh `mmap`: the 60 s, 289-oscillator
GrFNN trajectory (71 MB) takes one page fault per 4 KiB page (about 17,000 a call) and those
faults are a third of the run on the machines measured (docs/benchmarks.md). NumPy asks the
kernel for huge pages on its large arrays itself (`madvise(MADV_HUGEPAGE)`); glibc does the
same for its own mappings when started with the tunable `glibc.malloc.hugetlb=1` (glibc >=
2.35). A tunable is read only when the process starts, so a job (`nrtjax NAME` and
`python -m experiments.NAME` alike) re-executes itself once with it before it runs; `nrtjax
NAME` does so before it imports anything heavy. Opt out with
`GLIBC_TUNABLES=glibc.malloc.hugetlb=0` (any value already set is left alone).
"""

import os
import platform
import sys

HUGEPAGE_TUNABLE = "glibc.malloc.hugetlb"
_THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled"


def malloc_hugepages_apply(environ=None, *, libc=None, thp_mode_file=_THP_MODE) -> bool:
    """Whether re-running with `glibc.malloc.hugetlb=1` would change anything: Linux, glibc
    >= 2.35, transparent huge pages in `madvise` mode (with `always` every mapping gets them
    already, with `never` none can) and the tunable not set in `GLIBC_TUNABLES` already."""
    environ = os.environ if environ is None else environ
    if sys.platform != "linux" or HUGEPAGE_TUNABLE in environ.get("GLIBC_TUNABLES", ""):
        return False
    name, version = platform.libc_ver() if libc is None else libc
    try:
        major, minor = (int(v) for v in version.split(".")[:2])
    except ValueError:
        return False
    if name != "glibc" or (major, minor) < (2, 35):
        return False
    try:
        with open(thp_mode_file) as f:
            return "[madvise]" in f.read()
    except OSError:
        return False


def started_as_job_module() -> bool:
    """Whether this process was started as `python -m experiments.NAME` (the `__main__`
    module is one of the jobs), not imported by a test runner or another program."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec is not None and spec.name.startswith("experiments.")


def reexec_with_malloc_hugepages() -> None:
    """Re-execute this Python process (same interpreter, same command line, `sys.orig_argv`)
    with `glibc.malloc.hugetlb=1` added to `GLIBC_TUNABLES`, when `malloc_hugepages_apply()`
    says it helps; otherwise, or if the exec fails, return and carry on as started. Call it
    first thing: whatever the process did before is done again."""
    if not malloc_hugepages_apply():
        return
    env = dict(os.environ)
    env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), f"{HUGEPAGE_TUNABLE}=1"]))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, list(sys.orig_argv), env)
    except OSError:
        return
