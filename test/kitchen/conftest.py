"""
The kitchen verifier's host: commands run through a prefix that enters it
(``--kitchen-exec``: "docker exec ID" under Test Kitchen, "bin/lab exec
kitchen --" under make kitchen), so the same tests verify a container and a
lab host.
"""

import shlex
import subprocess

import pytest


def pytest_addoption(parser):
    parser.addoption("--kitchen-exec", help="the command prefix that runs a command in the host")


class Host:
    def __init__(self, prefix):
        self.prefix = shlex.split(prefix)

    def run(self, *argv, input=None):
        return subprocess.run([*self.prefix, *argv], capture_output=True, text=True, input=input, timeout=120)

    def check(self, *argv, input=None):
        result = self.run(*argv, input=input)
        assert result.returncode == 0, f"{' '.join(argv)}: {result.stdout}{result.stderr}"
        return result.stdout


@pytest.fixture(scope="session")
def host(request):
    prefix = request.config.getoption("--kitchen-exec")
    if not prefix:
        pytest.skip("no kitchen host: give --kitchen-exec (bin/kitchen does)")
    return Host(prefix)
