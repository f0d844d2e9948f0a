"""The hub's plugins: which are installed, and how their hooks are called (pluggy, as pytest and Datasette use).

The hooks are declared in ``server/hookspecs.py``; this module makes a hub's plugin manager, loads the
plugin modules, installs them on an app (tables first, then how their records are written, then
``install``), checks their config sections, and calls the hooks of a running site one plugin at a time.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from server import hookspecs
from server.config import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.config import SiteConfig
    from server.hub import Hub

log = logging.getLogger("vuoro.plugins")

# The parts a hub runs with unless told otherwise (create_app(plugins=...)).
DEFAULT_PLUGINS = ("server.staff", "server.bookings", "server.events", "server.stats", "server.feedback",
                   "server.retention", "server.phone", "server.bookings.notices")


def manager() -> pluggy.PluginManager:
    """A plugin manager that knows the hub's hooks (one per hub: tests run several hubs in one process)."""
    plugins = pluggy.PluginManager(hookspecs.PROJECT)
    plugins.add_hookspecs(hookspecs)
    return plugins


def load(names: Iterable[str]) -> list[ModuleType]:
    """The plugin modules by name; a part that is not installed is left out."""
    modules = []
    for name in names:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise  # the plugin is there but something it needs is not: say so
    return modules


def install_plugins(app: FastAPI, hub: Hub, names: Iterable[str] = DEFAULT_PLUGINS) -> None:
    """Register the plugins with the hub and install them on the app: their tables (on the writer thread),
    how their records are written, then each plugin's ``install``."""
    for module in load(names):
        hub.plugins.register(module, name=module.__name__)
    hub.plugins.check_pending()  # a hook misspelt in a plugin fails here, not silently never called
    hook = hub.plugins.hook
    for name, steps in dict(hook.store_schema()).items():  # two plugins may share a schema (statistics')
        hub.call(lambda engine, now, name=name, steps=steps: hub.store.migrate_plugin(name, steps))
    for writers in hook.record_writers():
        hub.store.writers.update(writers)
    hook.install(app=app, hub=hub)
    hub.plugins.check_pending()  # and in the objects the plugins registered for this hub


def check_config(config: SiteConfig, names: Iterable[str] = DEFAULT_PLUGINS) -> list[str]:
    """Every problem the plugins find in their sections of the site config, before anything starts."""
    plugins = manager()
    for module in load(names):
        plugins.register(module, name=module.__name__)
    problems: list[str] = []
    for impl in plugins.hook.check_config.get_hookimpls():  # every plugin's, in the order named
        try:
            impl.function(config)
        except ConfigError as exc:
            problems += exc.problems
    return problems


def call_each(caller: pluggy.HookCaller, **kwargs: Any) -> list[Any]:
    """Call every plugin's implementation of one hook in pluggy's order, each on its own: a plugin that raises
    is logged and the others still run (pluggy's own call would stop at the first). Their answers, None left out.
    """
    answers = []
    for impl in reversed(caller.get_hookimpls()):  # pluggy calls the last registered (and tryfirst) first
        try:
            answer = impl.function(*[kwargs[arg] for arg in impl.argnames])
        except Exception:
            who = getattr(impl.plugin, "__name__", type(impl.plugin).__name__)  # a module, or a plugin's object
            log.exception("plugin %s failed in %s", who, caller.name)
            continue
        if answer is not None:
            answers.append(answer)
    return answers


def commands(caller: pluggy.HookCaller) -> list[Any]:
    """Every plugin's implementation of a writer-thread hook (``tick``) as a hub command ``fn(engine, now)``."""
    return [lambda engine, now, function=impl.function, args=impl.argnames:
            function(*[{"engine": engine, "now": now}[arg] for arg in args])
            for impl in reversed(caller.get_hookimpls())]
