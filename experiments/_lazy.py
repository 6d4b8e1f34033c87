"""Import a job's module without its heavy dependencies, to check its config in a second.

`nrtjax NAME --help`, `--cfg job` and a bad config need only the job's `Config` schema, but
a job module imports JAX, Equinox, Diffrax, matplotlib, MNE, librosa or OpenCV at the top
(several seconds). `deferred_imports()` installs an import hook under which those packages
(`HEAVY`) are placeholders: a placeholder module stands for the package and its submodules,
and a name taken from it (`from nrtjax.audio.duet import DuetEngine`) is a placeholder
too. Nothing is imported until a placeholder is *used* (called, iterated, compared, an
attribute read, ...): then the real object is imported and used in its place, so a schema
whose checks need a library value still gets the right answer, only slower.

The module imported this way serves the config check only and is thrown away
(`forget()`); the job itself runs from a normal import. Any failure in this mode falls
back to the normal path (experiments/_cli.py), so the worst case is the old start-up time.
"""

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import operator
import sys
import types

HEAVY = ("jax", "jaxlib", "nrtjax", "equinox", "diffrax", "optax", "matplotlib", "scipy",
         "xarray", "mne", "librosa", "cv2", "soundfile", "wandb", "sklearn", "numba", "pandas",
         "tqdm")


def _is_heavy(name: str) -> bool:
    return name.split(".", 1)[0] in HEAVY


def _resolve(obj):
    """The real object a placeholder stands for (importing it now)."""
    while type(obj) in (_Module, _Attr):
        cached = object.__getattribute__(obj, "_real")
        if cached is not _UNSET:
            obj = cached
            continue
        if type(obj) is _Module:
            real = _real_import(object.__getattribute__(obj, "__name__"))
        else:
            parent = _resolve(object.__getattribute__(obj, "_parent"))
            call = object.__getattribute__(obj, "_call")
            if call is None:
                real = getattr(parent, object.__getattribute__(obj, "_attr"))
            else:
                args, kwargs = call
                real = parent(*(_resolve(a) for a in args),
                              **{k: _resolve(v) for k, v in kwargs.items()})
        object.__setattr__(obj, "_real", real)
        obj = real
    return obj


_UNSET = object()
_active = {"on": False, "stubs": set()}


def _real_import(name: str):
    """Import `name` for real, with the placeholders of its package out of the way."""
    saved = {k: sys.modules.pop(k) for k in list(sys.modules)
             if k in _active["stubs"] and isinstance(sys.modules.get(k), _Module)}
    was_on = _active["on"]
    _active["on"] = False
    try:
        return importlib.import_module(name)
    finally:
        _active["on"] = was_on
        for k, v in saved.items():
            if k not in sys.modules:
                sys.modules[k] = v


def _forward(op):
    def method(self, *args, **kwargs):
        return op(_resolve(self), *(_resolve(a) for a in args),
                  **{k: _resolve(v) for k, v in kwargs.items()})
    return method


class _Attr:
    """A name taken from a placeholder module, an attribute of one, or the result of
    calling one (`_call = (args, kwargs)`): evaluated on first use. Reading a plain
    attribute or calling it stays deferred (so `@eqx.filter_jit`, `matplotlib.use("Agg")`
    or a return annotation import nothing); anything else (a dunder, iteration, a
    comparison, `in`, truth, arithmetic, formatting) evaluates it."""

    __slots__ = ("_parent", "_attr", "_real", "_call")

    def __init__(self, parent, attr, call=None):
        object.__setattr__(self, "_parent", parent)
        object.__setattr__(self, "_attr", attr)
        object.__setattr__(self, "_real", _UNSET)
        object.__setattr__(self, "_call", call)

    def __getattribute__(self, name):
        if name.startswith("__") and name.endswith("__"):
            return getattr(_resolve(self), name)
        if object.__getattribute__(self, "_real") is not _UNSET:
            return getattr(object.__getattribute__(self, "_real"), name)
        return _Attr(self, name)

    def __call__(self, *args, **kwargs):
        if object.__getattribute__(self, "_real") is not _UNSET:
            return _resolve(self)(*(_resolve(a) for a in args),
                                  **{k: _resolve(v) for k, v in kwargs.items()})
        return _Attr(self, None, (args, kwargs))

    def __setattr__(self, name, value):
        setattr(_resolve(self), name, value)

    def __mro_entries__(self, bases):
        return (_resolve(self),)

    def __instancecheck__(self, obj):
        return isinstance(obj, _resolve(self))

    def __subclasscheck__(self, cls):
        return issubclass(cls, _resolve(self))


_OPS = {
    "__iter__": iter, "__len__": len,
    "__contains__": operator.contains, "__getitem__": operator.getitem, "__bool__": bool,
    "__eq__": operator.eq, "__ne__": operator.ne, "__lt__": operator.lt, "__le__": operator.le,
    "__gt__": operator.gt, "__ge__": operator.ge, "__hash__": hash, "__str__": str,
    "__repr__": repr, "__float__": float, "__int__": int, "__index__": operator.index,
    "__neg__": operator.neg, "__pos__": operator.pos, "__abs__": abs, "__format__": format,
    "__add__": operator.add, "__radd__": lambda x, y: y + x, "__sub__": operator.sub,
    "__rsub__": lambda x, y: y - x, "__mul__": operator.mul, "__rmul__": lambda x, y: y * x,
    "__truediv__": operator.truediv, "__rtruediv__": lambda x, y: y / x,
    "__floordiv__": operator.floordiv, "__mod__": operator.mod, "__pow__": operator.pow,
    "__rpow__": lambda x, y: y ** x, "__or__": operator.or_, "__ror__": lambda x, y: y | x,
    "__and__": operator.and_, "__enter__": lambda x: x.__enter__(),
    "__exit__": lambda x, *a: x.__exit__(*a),
}
for _name, _op in _OPS.items():
    setattr(_Attr, _name, _forward(_op))


class _Module(types.ModuleType):
    """A placeholder for a heavy package or submodule."""

    def __init__(self, name):
        super().__init__(name)
        object.__setattr__(self, "_real", _UNSET)
        self.__path__ = []

    def __getattr__(self, name):  # only for names not set on the placeholder
        if name.startswith("__") and name.endswith("__"):
            return getattr(_resolve(self), name)
        full = f"{self.__name__}.{name}"
        if full in sys.modules:
            return sys.modules[full]
        attr = _Attr(self, name)
        object.__setattr__(self, name, attr)
        return attr


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if not _active["on"] or not _is_heavy(name):
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        _active["stubs"].add(spec.name)
        return _Module(spec.name)

    def exec_module(self, module):
        pass


_FINDER = _Finder()


@contextlib.contextmanager
def deferred_imports():
    """Within this block, heavy packages not imported yet are placeholders."""
    before = set(sys.modules)
    sys.meta_path.insert(0, _FINDER)
    _active["on"] = True
    try:
        yield before
    finally:
        _active["on"] = False
        sys.meta_path.remove(_FINDER)


def forget(before: set[str]) -> None:
    """Remove the placeholders and every module imported with them (the job module, its
    helpers) from sys.modules, so that the job imports everything for real."""
    for name in list(sys.modules):
        if isinstance(sys.modules[name], _Module) or (
                name.startswith("experiments.") and name not in before):
            del sys.modules[name]
            # `from experiments import duet` reads the package's attribute before
            # sys.modules: drop it too, or the job gets the placeholder-laden module.
            parent, _, child = name.rpartition(".")
            if parent in sys.modules and getattr(sys.modules[parent], child, None) is not None:
                with contextlib.suppress(AttributeError):
                    delattr(sys.modules[parent], child)
    _active["stubs"].clear()
