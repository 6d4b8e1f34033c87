"""Reading the code blocks of README.md and docs/ and running them (tests/test_docs*.py).

The convention (stated for readers on docs/index.md):

- A ```python block runs; the blocks of one page share one namespace, in order. If the next
  block is ```text title="Output"```, the block's stdout must match it (doctest rules:
  `...` matches anything, runs of whitespace are equal).
- A ```console block holds `$ nrtjax ...` lines, each followed by its expected output; the
  command runs and its stdout + stderr must match.
- A ```bash block holds commands, one a line. Unmarked, every `nrtjax ...` command runs for
  real (in a temporary directory, run directory and outputs there, wandb off).
  `<!-- test: run OVERRIDES -->` before the block appends OVERRIDES (small sizes) to each
  `nrtjax` command of the block; the word `after-python` among them first runs the page's
  Python blocks above it in the same directory (for a file they write).
  `<!-- test: slow OVERRIDES -->` is `run` for a block that takes more than about 20 s of
  CPU even small: it runs with `pytest -m slow`, and the default suite checks its
  configuration as for `skip`.
  `<!-- test: skip REASON -->` says why a block cannot run in the suite (a cluster, minutes
  of compute, the user's own files); its `nrtjax` commands are then checked another way:
  the configuration each one names (every combination, for a multirun) composes and passes
  the job's range checks. A skipped `python scripts/X.py` must name an existing script that
  compiles, `make X` a Makefile target; any other command must be in a skipped block.
- Blocks with no language or `text` are diagrams and signatures, not code.
"""

import ast
import contextlib
import doctest
import importlib
import inspect
import io
import itertools
import re
import shlex
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)(.*)$")
MARKER = re.compile(r"^<!--\s*test:\s*(run|slow|skip)\b\s*(.*?)\s*-->$")
_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


class Block:
    """One fenced code block: where it is, its language, its text, its test marker."""

    def __init__(self, page: Path, line: int, lang: str, attrs: str, body: str, marker):
        self.page, self.line, self.lang, self.attrs, self.body = page, line, lang, attrs, body
        self.mode, self.arg = marker if marker else ("", "")
        self.output: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def parse(page: Path) -> list[Block]:
    """The fenced blocks of `page`, each with the `<!-- test: ... -->` marker right above
    it; an Output block is attached to the block before it instead of being listed."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    marker, i = None, 0
    while i < len(lines):
        stripped = lines[i].strip()
        found = MARKER.match(stripped)
        if found:
            marker = (found.group(1), found.group(2))
        fence = FENCE.match(lines[i])
        if fence:
            start, body = i, []
            i += 1
            while i < len(lines) and lines[i].rstrip() != "```":
                body.append(lines[i])
                i += 1
            text = "\n".join(body) + "\n"
            lang, attrs = fence.group(1), fence.group(2)
            if lang == "text" and 'title="Output"' in attrs:
                assert blocks and blocks[-1].output is None, f"{page}:{start + 1}: stray Output"
                blocks[-1].output = text
            else:
                blocks.append(Block(page, start + 1, lang, attrs, text, marker))
            marker = None
        elif stripped and not found:
            marker = None
        i += 1
    return blocks


ALL = [b for p in PAGES for b in parse(p)]


def matches(expected: str, got: str) -> bool:
    return _CHECKER.check_output(expected, got, _FLAGS)


def run_python(blocks: list[Block]) -> None:
    """Run Python blocks in order in one namespace, checking each one's shown output; a
    skipped block is only compiled, and its imports run."""
    namespace = {"__name__": "__docs__"}
    for b in blocks:
        code = compile(b.body, b.where, "exec")
        if b.mode == "skip":
            imports = [n for n in ast.parse(b.body).body
                       if isinstance(n, (ast.Import, ast.ImportFrom))]
            exec(compile(ast.Module(imports, []), b.where, "exec"), {})
            continue
        assert not b.mode, f"{b.where}: a python block is run or skipped"
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(code, namespace)
        if b.output is not None:
            assert matches(b.output, out.getvalue()), (
                f"{b.where} printed\n{out.getvalue()}\nbut the page shows\n{b.output}")


def commands(body: str) -> list[list[str]]:
    """Shell lines as argument lists: continuations joined, comments dropped."""
    text = body.replace("\\\n", " ")
    return [args for line in text.splitlines() if (args := shlex.split(line, comments=True))]


def console_steps(body: str) -> list[tuple[list[str], str]]:
    """`$ COMMAND` lines and the output shown under each."""
    steps: list[tuple[list[str], list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            steps.append((shlex.split(line[2:], comments=True), []))
        else:
            assert steps, f"console output before any command: {line!r}"
            steps[-1][1].append(line)
    return [(args, "\n".join(out) + "\n") for args, out in steps]


def run_nrtjax(argv: list[str]) -> tuple[int, str]:
    """Run `nrtjax ARGV` in this process; return its exit status and its output."""
    from experiments._cli import main

    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(list(argv))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return code, out.getvalue()


def expand_multirun(args: list[str]) -> list[list[str]]:
    """`-m a=1,2 b=x,y` -> the four single-run argument lists (Hydra's basic sweeper)."""
    if "-m" not in args and "--multirun" not in args:
        return [args]
    options = []
    for a in args:
        if a in ("-m", "--multirun"):
            continue
        key, sep, value = a.partition("=")
        if sep and "," in value and not re.match(r"^(\[|\w+\()", value):
            options.append([f"{key}={v}" for v in value.split(",")])
        else:
            options.append([a])
    return [list(c) for c in itertools.product(*options)]


def check_config(name: str, overrides: list[str]) -> None:
    """The configuration `nrtjax NAME OVERRIDES` names composes and passes the job's checks
    (the schema's `__post_init__`), without running the job."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    from experiments._cli import jobs
    from experiments._job import CONF_DIR, prepare_overrides

    assert name in jobs(), f"unknown job {name!r}"
    module = importlib.import_module(f"experiments.{name}")
    open_keys = inspect.getclosurevars(module.main).nonlocals.get("open_keys", ())
    overrides = prepare_overrides(list(overrides), open_keys)
    with warnings.catch_warnings():
        # Hydra's note that the submitit launchers' configs match their stored schemas.
        warnings.filterwarnings("ignore", r"\s*'hydra/launcher/", UserWarning)
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None, job_name=name):
            cfg = compose(config_name=name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.to_object(cfg)
