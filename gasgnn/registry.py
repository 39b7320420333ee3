"""One :class:`Registry` class behind every name -> object table of gasgnn.

Ops, heads, guides, GNN convs, ArchGraph relation builders, datasets and reference networks are all
registries of this class, so they share one set of rules (timm's ``_registry.py`` in spirit):
registering a taken name is an error unless ``overwrite=True``; an unknown name raises
:class:`RegistryError` with one message that lists what is registered; ``names()`` is sorted.

.. code-block:: python

    from gasgnn.registry import Registry

    BLOCKS = Registry("block")

    @BLOCKS.register("double", cost=2)
    def double(x):
        return 2 * x

    BLOCKS.build("double", 21)   # 42
    BLOCKS.meta("double")        # {'cost': 2}

Entries registered outside gasgnn come in through :func:`load_plugin`: it imports a module (by dotted
name or as a ``.py`` file) whose top level registers ops, datasets, guides, ..., so one file of your own
extends every registry (``gasgnn --plugin my_ops.py search ...``; see ``docs/extending.md``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar, overload

__all__ = ["PLUGINS_ENV", "Registry", "RegistryError", "load_plugin", "load_plugins", "plugins_from_env"]

T = TypeVar("T")
_MISSING: Any = object()


class RegistryError(KeyError):
    """An unknown or duplicate registry name. A :class:`KeyError`, so ``except KeyError`` still works."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0]) if self.args else ""


class Registry(Mapping[str, T], Generic[T]):
    """A name -> object table with one set of rules.

    A registry is a read-only :class:`~collections.abc.Mapping` (``name in reg``, ``reg[name]``,
    ``sorted(reg)``, ``reg.items()``); it changes only through :meth:`register` and :meth:`remove`.

    Args:
        kind (str): What the entries are (``"op"``, ``"head"``, ...), used in error messages.
        normalize (callable, optional): Maps a name to its key (e.g. :obj:`str.lower` for
            case-insensitive names). (default: :obj:`None`)
    """

    def __init__(self, kind: str, normalize: Callable[[str], str] | None = None) -> None:
        self.kind = kind
        self._normalize = normalize
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def _key(self, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{self.kind} names must be non-empty strings, got {name!r}")
        return self._normalize(name) if self._normalize else name

    # Mapping protocol ----------------------------------------------------------------------------
    def __getitem__(self, name: str) -> T:
        key = self._key(name) if isinstance(name, str) and name else name
        if key not in self._items:
            raise RegistryError(self.unknown_message(name))
        return self._items[key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(name) and self._key(name) in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"

    # Registration --------------------------------------------------------------------------------
    @overload
    def register(self, name: str, obj: None = None, *, overwrite: bool = False,
                 **meta: Any) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T, *, overwrite: bool = False, **meta: Any) -> T: ...

    def register(self, name: str, obj: Any = _MISSING, *, overwrite: bool = False, **meta: Any) -> Any:
        """Registers ``obj`` as ``name``, or returns a decorator that does.

        Args:
            name (str): The name.
            obj (object, optional): The entry; omitted, :meth:`register` is a decorator.
            overwrite (bool, optional): Replace an existing entry instead of raising. (default: :obj:`False`)
            **meta: Metadata kept beside the entry (:meth:`meta`).

        Returns:
            The entry (or the decorator, which returns its argument unchanged).

        Raises:
            RegistryError: if ``name`` is taken and ``overwrite`` is :obj:`False`.
        """
        key = self._key(name)

        def add(entry: T) -> T:
            if key in self._items and not overwrite:
                raise RegistryError(f"{self.kind} '{name}' is already registered (pass overwrite=True to replace it)")
            self._items[key] = entry
            self._meta[key] = dict(meta)
            return entry

        return add if obj is _MISSING else add(obj)

    def remove(self, name: str) -> T:
        """Removes and returns the entry ``name`` (tests use it to undo a registration)."""
        entry = self[name]
        key = self._key(name)
        del self._items[key]
        self._meta.pop(key, None)
        return entry

    # Lookup ------------------------------------------------------------------------------------
    def get(self, name: str, default: Any = _MISSING) -> Any:
        """The entry ``name``; raises :class:`RegistryError` unless a ``default`` is given."""
        if name in self:
            return self._items[self._key(name)]
        if default is _MISSING:
            raise RegistryError(self.unknown_message(name))
        return default

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Calls the entry ``name`` (a class or factory) with ``*args, **kwargs``."""
        return self.get(name)(*args, **kwargs)

    def meta(self, name: str) -> dict[str, Any]:
        """The metadata registered with ``name`` (a copy)."""
        self.get(name)
        return dict(self._meta[self._key(name)])

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def unknown_message(self, name: object) -> str:
        """The one error text for an unknown name."""
        return f"unknown {self.kind} '{name}'; registered: {', '.join(self.names()) or '(none)'}"


# ------------------------------------------------------------------------------------------------
# Plugins: modules of your own whose top level registers entries.

#: The environment variable naming plugins to load (comma-separated), for every ``gasgnn`` command.
PLUGINS_ENV = "GASGNN_PLUGINS"


def _is_file_spec(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or "/" in spec


def load_plugin(spec: str) -> ModuleType:
    """Imports a plugin: a module whose top level registers entries (``@register_op``, ``@register_dataset``, ...).

    ``spec`` is a dotted module name (looked up on ``sys.path``, then in the current directory) or the
    path of a ``.py`` file (imported as a module named after the file). Loading the same plugin again
    returns the module already imported, so its registrations run once.

    Args:
        spec (str): ``'my_package.my_ops'`` or ``'path/to/my_ops.py'``.

    Returns:
        ModuleType: the imported module.

    Raises:
        ValueError: naming ``spec`` when the module or file cannot be found (errors raised by the
            plugin's own code propagate unchanged).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"plugin: expected a module name or a .py file, got {spec!r}")
    spec = spec.strip()
    if _is_file_spec(spec):
        return _load_file(Path(spec).expanduser())
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as e:
        if not _names_spec(e, spec):  # the plugin itself imports something missing
            raise
    cwd = os.getcwd()
    if cwd in sys.path or "" in sys.path:
        raise ValueError(f"plugin '{spec}': no module named '{spec}' (on sys.path or in {cwd})")
    sys.path.insert(0, cwd)  # as 'python -m' does; kept, since the plugin may import its neighbours
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as e:
        if not _names_spec(e, spec):
            raise
        sys.path.remove(cwd)
        raise ValueError(f"plugin '{spec}': no module named '{spec}' (on sys.path or in {cwd})") from None


def _names_spec(e: ModuleNotFoundError, spec: str) -> bool:
    """Whether the missing module is ``spec`` itself or one of its parent packages."""
    return e.name is not None and (spec == e.name or spec.startswith(e.name + "."))


def _load_file(path: Path) -> ModuleType:
    if path.suffix != ".py":
        raise ValueError(f"plugin {path}: a plugin file must end in .py")
    if not path.is_file():
        raise ValueError(f"plugin {path}: no such file")
    path = path.resolve()
    name = path.stem
    if not name.isidentifier():
        raise ValueError(f"plugin {path}: '{name}' is not a valid module name; rename the file")
    known = sys.modules.get(name)
    if known is not None:
        if getattr(known, "__file__", None) and Path(known.__file__).resolve() == path:
            return known
        raise ValueError(f"plugin {path}: the module name '{name}' is taken by {known!r}; rename the file")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"plugin {path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    # In sys.modules before it runs, as a normal import: classes it defines get an importable __module__.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def plugins_from_env() -> list[str]:
    """The plugins named in ``$GASGNN_PLUGINS`` (comma-separated; empty entries are skipped)."""
    return [s.strip() for s in os.environ.get(PLUGINS_ENV, "").split(",") if s.strip()]


def load_plugins(specs: Iterable[str]) -> list[ModuleType]:
    """:func:`load_plugin` for each of ``specs``, in order."""
    return [load_plugin(s) for s in specs]
