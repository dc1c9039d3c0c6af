"""Shared fixtures: Salt loaders over the repository's _modules and _states."""

import logging
import os

import pytest
import salt._logging.impl
import salt.config

from lab.paths import REPO

# A stopped run (SIGTERM) still tears down the lab and the local cluster.
pytest_plugins = ["helpers.sigterm"]


@pytest.fixture(scope="session")
def minion_opts(tmp_path_factory):
    root = tmp_path_factory.mktemp("minion")
    opts = salt.config.minion_config(None)
    opts.update(
        root_dir=str(root),
        cachedir=str(root / "cache"),
        pki_dir=str(root / "pki"),
        sock_dir=str(root / "sock"),
        log_file=str(root / "minion.log"),
        extension_modules=str(root / "extmods"),
        file_client="local",
        file_roots={"base": [REPO]},
        module_dirs=[os.path.join(REPO, "_modules")],
        states_dirs=[os.path.join(REPO, "_states")],
    )
    return opts


def pytest_sessionfinish():
    """
    Drop the records held by Salt's deferred log handler (set up when salt is
    imported): at exit it would write them into pytest's capture stream, closed
    by then, as "Logging error" tracebacks. pytest has shown every test's logs.
    """
    handler = salt._logging.impl.get_temp_handler()
    if handler is not None:
        handler.sync_with_handlers(())
        logging.root.removeHandler(handler)
