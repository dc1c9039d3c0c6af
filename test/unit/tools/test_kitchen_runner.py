"""make kitchen's runner (test/kitchen/__main__.py): what it reads from kitchen.yml and copies to the host."""

import io
import tarfile

from kitchen import __main__ as runner


def test_every_suite_instance_is_the_minion_its_pillar_names():
    """Kitchen names the minion after the instance: the suite's pillar must give it the roles."""
    instances = list(runner.suites())
    assert instances, "kitchen.yml has no suite"
    for instance, suite, _platform in instances:
        pillar = runner.suite_pillar(suite)["pgfailover"]
        minions = {pillar["monitor"]["minion"], *(node["minion"] for node in pillar["nodes"])}
        assert minions == {instance}, (instance, minions)
        assert pillar["repo"] == runner.LAB_REPO


def test_the_formula_copied_to_the_host_has_its_modules_and_no_caches():
    with tarfile.open(fileobj=io.BytesIO(runner.formula_archive())) as tar:
        names = tar.getnames()
    assert "pgfailover/map.jinja" in names and "_modules/pgfailover.py" in names
    assert "_states/pgfailover.py" in names and "_beacons/pgfailover.py" in names
    assert not [name for name in names if "__pycache__" in name or name.startswith(".venv")]
