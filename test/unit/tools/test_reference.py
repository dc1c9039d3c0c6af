"""docs/reference.md is what the docstrings give, and every public function shows how it is called."""

import importlib.util
import os

from lab.paths import REPO

SPEC = importlib.util.spec_from_file_location("reference", os.path.join(REPO, "bin", "reference.py"))
reference = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(reference)


def test_the_reference_page_is_generated_from_the_docstrings():
    with open(reference.OUT) as f:
        assert f.read() == reference.reference(), "docs/reference.md is stale: run make reference"


def test_every_public_function_has_a_cli_example_and_every_state_a_yaml_one():
    assert reference.missing_examples() == []
