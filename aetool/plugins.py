"""The plugin manager: built-in variants load exactly like installed ones, and loading is tolerant.

Third-party plugins come from the entry-point group ``aetool``. A plugin that fails to import,
has a bad hook signature or registers a name that is taken produces one warning naming the
distribution and the error; every command still works. ``AETOOL_STRICT_PLUGINS=1`` makes those
warnings fatal, ``AETOOL_LOAD_PLUGINS=a,b`` loads only the named third-party plugins (empty loads
none) and ``AETOOL_BLOCK_PLUGINS=a,b`` blocks plugins, built-in ones included, by name.
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib
import os
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from aetool import hookspecs
from aetool._version import __version__
from aetool.errors import PluginError

ENTRY_POINT_GROUP = "aetool"
# A plugin may fail any way at all, sys.exit() at import included; only Ctrl-C goes through.
PLUGIN_FAILURES: tuple[type[BaseException], ...] = (
    Exception, SystemExit, GeneratorExit,
    *[group for group in [getattr(builtins, "BaseExceptionGroup", None)] if group])
BUILTIN_DISTRIBUTION = "aetool"
BUILTIN_MODULES = (
    "aetool.variants.ae",
    "aetool.variants.dae",
    "aetool.variants.sparse",
    "aetool.variants.contractive",
    "aetool.variants.conv",
    "aetool.variants.vae",
    "aetool.variants.cvae",
    "aetool.noise",
)


class PluginWarning(UserWarning):
    """A plugin could not be loaded or registered something invalid; aetool carries on."""


@dataclass
class PluginInfo:
    """What aetool knows about one loaded (or failed) plugin."""

    name: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    noise_models: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "hooks": self.hooks,
            "variants": self.variants,
            "noise_models": self.noise_models,
            "errors": self.errors,
        }


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _strict() -> bool:
    return os.environ.get("AETOOL_STRICT_PLUGINS", "") not in ("", "0", "false", "no")


class Registry:
    """Loads plugins once and holds the variants and noise models they registered."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("aetool")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.variants: dict[str, type] = {}
        self.variant_owner: dict[str, str] = {}
        self.noise_models: dict[str, type] = {}
        self.noise_owner: dict[str, str] = {}
        self._load()

    # -- loading -------------------------------------------------------------------------------
    def _problem(self, info: PluginInfo, message: str) -> None:
        info.errors.append(message)
        if _strict():
            raise PluginError(message)
        warnings.warn(message, PluginWarning, stacklevel=3)

    def _register_plugin(self, plugin: object, info: PluginInfo) -> bool:
        try:
            self.pm.register(plugin, name=info.name)
        except PLUGIN_FAILURES as exc:  # pluggy raises PluginValidationError and ValueError
            self._problem(
                info,
                f"aetool plugin '{info.name}' from package '{info.distribution}' was not loaded: "
                f"{type(exc).__name__}: {exc}",
            )
            return False
        try:
            self.pm.check_pending()
        except PLUGIN_FAILURES as exc:
            self.pm.unregister(name=info.name)
            self._problem(
                info,
                f"aetool plugin '{info.name}' from package '{info.distribution}' was not loaded: "
                f"{type(exc).__name__}: {exc}",
            )
            return False
        info.hooks = sorted(
            caller.name for caller in self.pm.get_hookcallers(plugin) or []
        )
        return True

    def _load(self) -> None:
        blocked = set(_env_list("AETOOL_BLOCK_PLUGINS") or [])
        for module_name in BUILTIN_MODULES:
            short = module_name.rsplit(".", 1)[-1]
            info = PluginInfo(short, BUILTIN_DISTRIBUTION, _own_version(), builtin=True)
            if short in blocked or module_name in blocked:
                continue
            self.plugins[short] = info
            self._register_plugin(importlib.import_module(module_name), info)

        only = _env_list("AETOOL_LOAD_PLUGINS")
        for entry_point in _entry_points():
            dist_name, dist_version = _distribution_of(entry_point)
            if only is not None and entry_point.name not in only and dist_name not in only:
                continue
            if entry_point.name in blocked or dist_name in blocked:
                continue
            info = PluginInfo(entry_point.name, dist_name, dist_version, builtin=False)
            self.plugins[entry_point.name] = info
            try:
                plugin = entry_point.load()
            except PLUGIN_FAILURES as exc:
                self._problem(
                    info,
                    f"aetool plugin '{entry_point.name}' from package '{dist_name}' failed to "
                    f"import: {type(exc).__name__}: {exc}",
                )
                continue
            self._register_plugin(plugin, info)

        self._collect("register_variants", self.variants, self.variant_owner, "variants")
        self._collect(
            "register_noise_models", self.noise_models, self.noise_owner, "noise_models"
        )

    def _collect(
        self, hook_name: str, target: dict[str, type], owner: dict[str, str], attr: str
    ) -> None:
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            info = self.plugins[impl.plugin_name]

            def register(cls: type, _info: PluginInfo = info) -> None:
                self._add(cls, _info, target, owner, attr)

            try:
                impl.function(register=register)
            except PLUGIN_FAILURES as exc:
                self._problem(
                    info,
                    f"aetool plugin '{info.name}' from package '{info.distribution}' raised in "
                    f"{hook_name}: {type(exc).__name__}: {exc}",
                )

    def _add(
        self,
        cls: type,
        info: PluginInfo,
        target: dict[str, type],
        owner: dict[str, str],
        attr: str,
    ) -> None:
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name or name != name.lower():
            self._problem(
                info,
                f"aetool plugin '{info.name}' from package '{info.distribution}' registered "
                f"{cls!r} without a lower-case 'name' attribute; it was skipped",
            )
            return
        if attr == "variants" and not dataclasses.is_dataclass(getattr(cls, "Config", None)):
            self._problem(
                info,
                f"aetool plugin '{info.name}' from package '{info.distribution}' registered "
                f"variant '{name}' whose Config is not a dataclass; it was skipped",
            )
            return
        if name in target:
            first = self.plugins[owner[name]]
            self._problem(
                info,
                f"duplicate aetool name '{name}': provided by plugin '{first.name}' (package "
                f"'{first.distribution}') and by plugin '{info.name}' (package "
                f"'{info.distribution}'); keeping the first, uninstall or rename one",
            )
            return
        target[name] = cls
        owner[name] = info.name
        getattr(info, attr).append(name)

    def add_variant(self, cls: type, plugin: str = "__local__") -> None:
        """Register a variant class directly (tests, notebooks): same checks as the hook."""
        info = self.plugins.setdefault(plugin, PluginInfo(plugin, plugin, "", builtin=False))
        self._add(cls, info, self.variants, self.variant_owner, "variants")

    # -- queries ---------------------------------------------------------------------------------
    def variant(self, name: str) -> type:
        """The variant class registered under ``name``, or a clear error listing the choices."""
        try:
            return self.variants[name]
        except KeyError:
            raise PluginError(
                f"unknown variant '{name}'; installed variants: {', '.join(sorted(self.variants))}"
            ) from None

    def noise_model(self, name: str) -> type:
        try:
            return self.noise_models[name]
        except KeyError:
            raise PluginError(
                f"unknown noise model '{name}'; installed: {', '.join(sorted(self.noise_models))}"
            ) from None

    def distribution_of_variant(self, name: str) -> str:
        return self.plugins[self.variant_owner[name]].distribution


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _distribution_of(entry_point: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return entry_point.module.split(".")[0], "unknown"
    return dist.metadata["Name"], dist.version


def _own_version() -> str:
    return __version__


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = Registry()
    return _registry


def reset_registry() -> None:
    """Forget loaded plugins so the next call reloads them (tests, after installing a plugin)."""
    global _registry
    _registry = None
    importlib.invalidate_caches()


def get_variant(name: str) -> type:
    """Shorthand for ``get_registry().variant(name)``."""
    return get_registry().variant(name)


def list_variants() -> dict[str, type]:
    """All registered variants by name."""
    return dict(get_registry().variants)


__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginWarning",
    "Registry",
    "get_registry",
    "get_variant",
    "list_variants",
    "reset_registry",
]
