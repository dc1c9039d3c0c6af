"""Shared fixtures: Salt loaders over the repository's _modules and _states."""

import os

import pytest
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
