"""The README's Python examples run as printed (the core and quick-start blocks)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks():
    text = README.read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_readme_python_block_runs(index, tmp_path, monkeypatch):
    code = _blocks()[index]
    if code.startswith("# Needs your own data file"):
        pytest.skip("this README block reads the user's own data file")
    monkeypatch.chdir(tmp_path)  # blocks may write files (e.g. session.edf)
    exec(compile(code, f"README.md[python block {index}]", "exec"), {"__name__": "__readme__"})
