"""Install the tests' network guard in a Python process the test suite started (see netguard.py)."""

import importlib.machinery
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name: str, path: str) -> None:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    module.install()


def _chain() -> None:
    """Run the sitecustomize this one shadows, if the interpreter has one."""
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


if os.environ.get("NBB_NETWORK_GUARD") == "1":
    # Loaded by path: a child's sys.path need not reach the repository.
    _load("nbb_netguard", os.path.join(os.path.dirname(_HERE), "netguard.py"))
_chain()
