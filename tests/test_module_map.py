"""The module map, enforced: which parts of nrtjax may import which (read statically from
every `import` statement, including those inside functions), and what `import nrtjax` loads
(in a fresh interpreter)."""

import ast
import importlib
import subprocess
import sys

import pytest

from ._docs import ROOT

PACKAGE = ROOT / "nrtjax"

# (importer prefix, forbidden prefixes, why)
RULES = [
    ("nrtjax", ("hydra", "omegaconf", "wandb", "experiments"),
     "the library runs without the job layer (Hydra, wandb, experiments/)"),
    ("nrtjax.models", ("nrtjax.audio", "nrtjax.beats", "nrtjax.eeg", "nrtjax.video",
                       "nrtjax.surrogate", "nrtjax.plots", "cv2", "mne", "soundfile",
                       "librosa", "matplotlib"),
     "models are vector fields: no media, no surrogate, no plots"),
    ("nrtjax.analysis", ("nrtjax.plots", "matplotlib"), "analysis computes, plots draw"),
]


def _module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path) -> set[str]:
    """The absolute names of the modules `path` imports, anywhere in the file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
                found |= ({f"{stem}.{a.name}" for a in node.names} if node.module is None
                          else {stem})
            else:
                found.add(node.module)
    return found


def graph() -> dict[str, set[str]]:
    return {_module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_parser_reads_relative_imports():
    g = graph()
    assert "nrtjax._simulate" in g["nrtjax"]                 # from ._simulate import ...
    assert "nrtjax.models.ashle" in g["nrtjax.fitting.losses"]  # from ..models.ashle import
    assert "nrtjax.analysis.stability" in g["nrtjax.analysis"]  # from . import stability


@pytest.mark.parametrize("importer, forbidden, why", RULES, ids=[r[0] for r in RULES])
def test_module_map(importer, forbidden, why):
    bad = sorted(f"{mod} imports {dep}" for mod, deps in graph().items()
                 if _under(mod, importer) for dep in deps
                 if any(_under(dep, f) for f in forbidden))
    assert not bad, f"{why}:\n" + "\n".join(bad)


def test_import_nrtjax_loads_no_media_and_no_job_layer():
    heavy = ["cv2", "mne", "soundfile", "matplotlib", "librosa", "hydra", "omegaconf", "wandb",
             "experiments", "nrtjax.audio", "nrtjax.eeg", "nrtjax.video", "nrtjax.plots",
             "scipy.signal", "scipy.stats"]
    code = ("import sys, nrtjax, nrtjax.analysis.stability, nrtjax.analysis.modelocking; "
            f"print(sorted({{m.split('.')[0] if not m.startswith(('nrtjax', 'scipy.')) "
            f"else m for m in sys.modules}} & set({heavy!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"`import nrtjax` loaded {out.stdout.strip()}"


def test_media_subpackages_load_on_first_use():
    code = ("import sys, nrtjax as nrt; assert 'nrtjax.audio' not in sys.modules; "
            "nrt.beats.decode, nrt.beats.corpus; assert 'soundfile' not in sys.modules; "
            "nrt.audio.load_audio; nrt.analysis.stability.spontaneous_amplitudes; "
            "assert 'soundfile' in sys.modules and nrt.audio is sys.modules['nrtjax.audio']; "
            "print('OK')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=False)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-2000:]


def test_each_subpackage_imports_its_modules_and_no_name_shadows_one():
    """`nrtjax.X.Y` is the module `nrtjax/X/Y.py`, never a function or class re-exported
    over it, and every public module is imported by its package's `__init__.py`
    (`from . import Y as Y`), so that `import nrtjax.X` makes `nrtjax.X.Y` work."""
    shadowed, not_imported = [], []
    for init in sorted(PACKAGE.rglob("__init__.py")):
        package = _module_name(init)
        pkg = importlib.import_module(package)
        modules = sorted(p.stem for p in init.parent.glob("*.py") if p.stem != "__init__")
        imported = {a.asname or a.name for node in ast.parse(init.read_text()).body
                    if isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module
                    for a in node.names}
        for name in modules:
            module = importlib.import_module(f"{package}.{name}")
            if getattr(pkg, name) is not module:
                shadowed.append(f"{package}.{name} is a {type(getattr(pkg, name)).__name__}")
            if not name.startswith("_") and name not in imported:
                not_imported.append(f"{package}.{name}")
    assert not shadowed, "names that hide their module (rename the module):\n" + "\n".join(shadowed)
    assert not not_imported, "modules their package does not import:\n" + "\n".join(not_imported)
