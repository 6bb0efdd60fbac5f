"""kubernetes-asyncio's configuration loaders and REST transport, without its generated client.

`import kubernetes_asyncio` runs package `__init__` files that import every generated API and
model class: about 0.3 s and 40 MB that Kollie, which sends and receives plain dicts, never
uses. Kollie needs only the configuration loaders (kubeconfig with exec plugins and token
refresh, in-cluster service accounts) and the REST transport behind `ApiClient`.

So the three packages are registered with their `__init__` deferred: their submodules import
as usual, and the first time any code asks a package for a name it does not hold yet (tests and
tools using the generated client, `kubernetes_asyncio.client.CoreV1Api`), the real `__init__`
runs and everything is there, unchanged. If kubernetes-asyncio was imported before, nothing is
deferred.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

_DEFERRED = ("kubernetes_asyncio", "kubernetes_asyncio.client", "kubernetes_asyncio.client.models")
_TRANSPORT = ("exceptions", "configuration", "rest", "api_client")
"""Submodules of kubernetes_asyncio.client, in the order they import each other."""


def _deferred_package(name: str) -> types.ModuleType:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not an importable package")
    module = importlib.util.module_from_spec(spec)
    loaded = False

    def __getattr__(attribute: str) -> Any:
        nonlocal loaded
        if loaded or attribute.startswith("__"):
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        loaded = True
        assert spec.loader is not None
        spec.loader.exec_module(module)
        return getattr(module, attribute)

    module.__dict__["__getattr__"] = __getattr__
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def load() -> tuple[Any, Any]:
    """kubernetes_asyncio's `client` and `config` packages, importing as little as possible."""
    if "kubernetes_asyncio" not in sys.modules:
        for name in _DEFERRED:
            _deferred_package(name)
        client: Any = sys.modules["kubernetes_asyncio.client"]
        for submodule in _TRANSPORT:
            importlib.import_module(f"kubernetes_asyncio.client.{submodule}")
            if submodule == "rest":
                # api_client imports these by name from the package; give it them directly.
                client.Configuration = client.configuration.Configuration
        client.ApiClient = client.api_client.ApiClient
    client = importlib.import_module("kubernetes_asyncio.client")
    config = importlib.import_module("kubernetes_asyncio.config")
    return client, config
