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


def test_repeated_keys_are_refused_at_every_level():
    with pytest.raises(yaml.YAMLError, match="found the key 'a' a second time"):
        yamlfile.safe_load("a: 1\nb: 2\na: 3\n")
    with pytest.raises(yaml.YAMLError, match="found the key 'epochs' a second time"):
        yamlfile.safe_load("runs:\n  r: {epochs: 1, epochs: 2}\n")
    assert yaml.safe_load("a: 1\na: 3\n") == {"a": 3}  # what plain PyYAML (and Snakemake) does
    # merge keys may override what they merge; different keys of equal spelling in other maps are fine
    text = "base: &b {x: 1, y: 2}\nr:\n  <<: *b\n  x: 3\ns: {x: 1}\n"
    assert yamlfile.safe_load(text) == {"base": {"x": 1, "y": 2}, "r": {"x": 3, "y": 2}, "s": {"x": 1}}


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: 1\nb:\n\tc: 2\n", ":3:1: not valid YAML: found character that cannot start any token"),
        ("a: 1\nb: 2\na: 3\n", ":3:1: not valid YAML: found the key 'a' a second time (first at line 1)"),
        ("a: [1, 2\nb: 3\n", ":2:2: not valid YAML: did not find expected ','"),
        ("a: b: c\n", ":1:5: not valid YAML: mapping values are not allowed"),
        ("", ": empty (no YAML content); a config is a mapping"),
        ("# only a comment\n\n", ": empty (no YAML content)"),
        ("- a\n- b\n", ":1:1: a config must be a mapping of keys to values at the top level, not a list"),
    ],
)
def test_load_mapping_names_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(yamlfile.YAMLFileError) as info:
        yamlfile.load_mapping(path, "a config")
    assert str(info.value).startswith(f"{path}{message}"), str(info.value)
    assert ("holds a tab" in str(info.value)) == ("\t" in text)
