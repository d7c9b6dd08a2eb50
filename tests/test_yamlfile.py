"""oodflow.yamlfile: the C parser, when present, reads exactly what yaml.safe_load reads."""

import pytest
import yaml

from oodflow import yamlfile
from oodflow.config import SCHEMA_PATH


def test_same_result_as_safe_load_on_the_schema_and_configs():
    from pathlib import Path

    root = Path(SCHEMA_PATH).parents[1]
    files = [SCHEMA_PATH, *sorted((root / "config").rglob("*.yaml"))]
    assert len(files) > 5
    for path in files:
        text = path.read_text()
        assert yamlfile.safe_load(text) == yaml.safe_load(text), path


def test_unsafe_tags_and_bad_yaml_are_rejected_as_by_safe_load():
    with pytest.raises(yaml.YAMLError):
        yamlfile.safe_load("!!python/object/apply:os.system ['true']")
    with pytest.raises(yaml.YAMLError):
        yamlfile.safe_load("a: [1, 2")
