"""`nrtjax NAME key=value ...`: run the Hydra app experiments/NAME.py."""

import importlib
import pkgutil
import sys

import experiments
from experiments._env import reexec_with_malloc_hugepages


def jobs() -> dict[str, str]:
    """Job names and their one-line descriptions."""
    out = {}
    for info in pkgutil.iter_modules(experiments.__path__):
        if info.name.startswith("_"):
            continue
        spec = importlib.util.find_spec(f"experiments.{info.name}")
        doc = ""
        if spec and spec.origin:
            with open(spec.origin) as f:
                src = f.read()
            if src.lstrip().startswith('"""'):
                doc = src.lstrip()[3:].split("\n", 1)[0].rstrip('".')
        out[info.name] = doc
    return out


def main(argv: list[str] | None = None) -> None:
    """Run a job. Called from the command line (`argv` None), the process first re-executes
    itself with glibc's malloc on transparent huge pages where that helps
    (`experiments/_env.py`); with an explicit `argv` it runs in this process as it is."""
    if argv is None:
        reexec_with_malloc_hugepages()
    argv = sys.argv[1:] if argv is None else argv
    available = jobs()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("usage: nrtjax NAME [key=value ...] [-m for a multirun sweep] [--help for a job]\n")
        print("jobs:")
        for name, doc in sorted(available.items()):
            print(f"  {name:<22} {doc}")
        print("\nEach job is a Hydra app: `nrtjax NAME --cfg job` prints its config.")
        sys.exit(0 if argv else 2)
    name, rest = argv[0], argv[1:]
    if name not in available:
        print(f"nrtjax: unknown job {name!r}; available: {', '.join(sorted(available))}",
              file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(f"experiments.{name}")
    sys.argv = [f"nrtjax {name}", *rest]
    module.main()


if __name__ == "__main__":
    main()
