"""The formula's Python files loaded as plain modules, for the unit tests."""

import importlib.util
import os

from lab.paths import REPO


def load(path, name):
    """
    The repository file ``path`` (such as ``_modules/pgfailover.py``) as a new
    module called ``name``: each name gives its own copy, so a test file can
    patch its copy without touching another file's.
    """
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
