"""The `nrtjax` commands shown in README.md and docs/ work as shown: run at a small size,
their shown output compared, or (marked as too long, needing a cluster or the user's own
files) their configuration checked. The convention is in tests/_docs.py."""

import re
import shlex

import pytest

from ._docs import (ALL, ROOT, check_config, commands, console_steps, expand_multirun, matches,
                    parse, run_nrtjax, run_python)

SHELL = [b for b in ALL if b.lang in ("bash", "console")]
CASES = [pytest.param(b, "check" if b.mode in ("skip", "slow") else "run", id=b.where)
         for b in SHELL]
CASES += [pytest.param(b, "run", id=f"{b.where}:run", marks=pytest.mark.slow)
          for b in SHELL if b.mode == "slow"]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A working directory holding the files the docs' commands name (tests/data)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "data").symlink_to(ROOT / "tests" / "data")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    return tmp_path


def _check_skipped(block, args):
    if args[0] == "nrtjax":
        assert len(args) > 1 and not args[1].startswith("-"), f"{block.where}: {args}"
        for single in expand_multirun(args[2:]):
            check_config(args[1], single)
    elif args[0] == "make":
        makefile = (ROOT / "Makefile").read_text()
        assert re.search(rf"^{re.escape(args[1])}:", makefile, re.M), (
            f"{block.where}: no Makefile target {args[1]!r}")
    elif args[0] == "python" and args[1].startswith("scripts/"):
        script = ROOT / args[1]
        assert script.is_file(), f"{block.where}: no {args[1]}"
        compile(script.read_text(), str(script), "exec")


@pytest.mark.parametrize("block, how", CASES)
def test_shell_block(block, how, sandbox):
    if block.lang == "console":
        for args, expected in console_steps(block.body):
            assert args[0] == "nrtjax", f"{block.where}: only nrtjax commands run here"
            _, got = run_nrtjax(args[1:])
            assert matches(expected, got), f"{block.where}: `{shlex.join(args)}` printed\n{got}"
        return
    extra = shlex.split(block.arg) if block.mode in ("run", "slow") else []
    if "after-python" in extra:
        extra.remove("after-python")
        run_python([b for b in parse(block.page) if b.lang == "python" and b.line < block.line])
    for k, args in enumerate(commands(block.body)):
        if how == "check":
            _check_skipped(block, args)
            continue
        assert args[0] == "nrtjax", (
            f"{block.where}: `{shlex.join(args)}` runs only if marked <!-- test: skip REASON -->")
        argv = args[1:] + extra
        if len(argv) > 1 and not any(a.startswith("-") for a in argv):
            argv += ["wandb.mode=disabled", f"hydra.run.dir={sandbox / f'run{k}'}"]
        code, out = run_nrtjax(argv)
        assert code == 0, f"{block.where}: `nrtjax {shlex.join(argv)}` exited {code}:\n{out}"
