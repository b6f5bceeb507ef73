"""load_config: defaults, YAML/TOML files, --set overrides, errors that name the field, fingerprint."""

from __future__ import annotations

import pytest

from audiomill.jobs.prepare import config_fingerprint
from audiomill.config import CleanConfig, ConfigError, VadConfig, apply_override, load_config


def test_defaults_are_valid_and_sensible():
    cfg = load_config()
    assert cfg == CleanConfig()
    assert cfg.vad.threshold == 0.5
    assert cfg.ingest.part_target_bytes == 16 * 1024**2 and cfg.ingest.part_size == 1000  # bytes size parts
    assert "*.wav" in cfg.ingest.include
    assert cfg.vad.max_segment_s >= 2 * cfg.vad.min_segment_s
    assert cfg.runner.kind == "auto"
    assert cfg.decode.allowed_sample_rates_hz is None


def test_yaml_file_loads(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(
        "inputs: [/data/a, /data/b]\n"
        "output: /out\n"
        "vad:\n  threshold: 0.7\n  max_segment_s: 20\n"
        "ingest:\n  include: ['*.wav']\n  part_size: 4\n"
        "decode:\n  allowed_sample_rates_hz: [16000, 48000]\n")
    cfg = load_config(path)
    assert cfg.inputs == ["/data/a", "/data/b"]
    assert cfg.output == "/out"
    assert cfg.vad.threshold == 0.7
    assert cfg.vad.max_segment_s == 20.0
    assert cfg.vad.min_segment_s == 1.0  # untouched default
    assert cfg.ingest.include == ["*.wav"]
    assert cfg.ingest.part_size == 4
    assert cfg.decode.allowed_sample_rates_hz == [16000, 48000]


def test_toml_file_loads(tmp_path):
    path = tmp_path / "job.toml"
    path.write_text(
        'inputs = ["/data/a"]\noutput = "s3://bucket/out"\n'
        "[vad]\nthreshold = 0.35\n"
        "[shard]\nmax_samples = 7\n"
        '[runner]\nkind = "local"\n')
    cfg = load_config(path)
    assert cfg.inputs == ["/data/a"]
    assert cfg.output == "s3://bucket/out"
    assert cfg.vad.threshold == 0.35
    assert cfg.shard.max_samples == 7
    assert cfg.runner.kind == "local"


def test_empty_yaml_file_gives_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == CleanConfig()


def test_set_overrides_dotted_keys_with_yaml_typed_values(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("vad:\n  threshold: 0.7\n")
    cfg = load_config(path, overrides=[
        "vad.threshold=0.6",  # beats the file
        "ingest.part_size=3",
        "decode.allowed_sample_rates_hz=[16000, 44100]",
        "ingest.exclude=['*.tmp', 'junk*']",
        "runner.num_cpus=2",
        "runner.address=",  # empty value -> null
        "output=/tmp/out",
    ])
    assert cfg.vad.threshold == 0.6
    assert cfg.ingest.part_size == 3
    assert isinstance(cfg.ingest.part_size, int)
    assert cfg.decode.allowed_sample_rates_hz == [16000, 44100]
    assert cfg.ingest.exclude == ["*.tmp", "junk*"]
    assert cfg.runner.num_cpus == 2
    assert cfg.runner.address is None
    assert cfg.output == "/tmp/out"


def test_top_level_keywords_set_inputs_and_output_and_none_is_ignored():
    cfg = load_config(inputs=["/a", "/b"], output="/o", runner=None)
    assert cfg.inputs == ["/a", "/b"]
    assert cfg.output == "/o"
    assert cfg.runner == CleanConfig().runner


def test_apply_override_builds_nested_sections():
    data: dict = {}
    apply_override(data, "vad.threshold=0.25")
    apply_override(data, "vad.pad_s=0")
    assert data == {"vad": {"threshold": 0.25, "pad_s": 0}}


@pytest.mark.parametrize("assignment, field", [
    ("vad.threshold=1.5", "vad.threshold"),
    ("vad.threshold=0", "vad.threshold"),
    ("vad.threshold=high", "vad.threshold"),
    ("ingest.part_size=0", "ingest.part_size"),
    ("ingest.part_size=many", "ingest.part_size"),
    ("vad.bogus=1", "vad.bogus"),
    ("bogus_section.x=1", "bogus_section"),
    ("runner.kind=slurm", "runner.kind"),
    ("shard.target_bytes=-1", "shard.target_bytes"),
    ("decode.max_channels=0", "decode.max_channels"),
])
def test_invalid_values_raise_config_error_naming_the_field(assignment, field):
    with pytest.raises(ConfigError) as info:
        load_config(overrides=[assignment])
    assert field in str(info.value)


def test_invalid_value_in_file_names_the_field(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("ingest:\n  part_size: -5\n")
    with pytest.raises(ConfigError, match=r"ingest\.part_size"):
        load_config(path)


def test_unknown_key_in_toml_names_the_field(tmp_path):
    path = tmp_path / "job.toml"
    path.write_text("[vad]\nbogus = 1\n")
    with pytest.raises(ConfigError, match=r"vad\.bogus"):
        load_config(path)


def test_missing_config_file_raises_config_error_naming_it(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(missing)


def test_unparsable_files_raise_config_error(tmp_path):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("vad: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad_yaml)
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[vad\nthreshold = \n")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_config(bad_toml)
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(not_mapping)


@pytest.mark.parametrize("assignment", ["vad.threshold", "=0.5"])
def test_malformed_set_raises_config_error(assignment):
    with pytest.raises(ConfigError):
        load_config(overrides=[assignment])


def test_set_into_a_scalar_is_rejected():
    with pytest.raises(ConfigError, match="output"):
        load_config(overrides=["output=/x", "output.sub=1"])


def test_max_segment_shorter_than_twice_min_segment_is_rejected():
    with pytest.raises(ConfigError, match="max_segment_s"):
        load_config(overrides=["vad.min_segment_s=2", "vad.max_segment_s=3.9"])
    ok = load_config(overrides=["vad.min_segment_s=2", "vad.max_segment_s=4"])
    assert ok.vad.max_segment_s == 4.0
    with pytest.raises(ValueError):
        VadConfig(min_segment_s=5.0, max_segment_s=9.0)


def test_config_is_frozen():
    cfg = load_config()
    with pytest.raises(Exception):
        cfg.vad.threshold = 0.9  # type: ignore[misc]


def test_fingerprint_changes_with_output_affecting_settings():
    base = config_fingerprint(load_config())
    assert base == config_fingerprint(load_config())
    assert len(base) == 16 and all(c in "0123456789abcdef" for c in base)
    assert config_fingerprint(load_config(overrides=["vad.threshold=0.6"])) != base
    assert config_fingerprint(load_config(overrides=["shard.max_samples=5"])) != base
    assert config_fingerprint(load_config(overrides=["decode.min_duration_s=0.5"])) != base
    assert config_fingerprint(load_config(overrides=["ingest.part_size=3"])) != base


def test_fingerprint_ignores_runner_inputs_and_output():
    base = config_fingerprint(load_config())
    other = load_config(
        inputs=["/somewhere/else"], output="s3://b/o",
        overrides=["runner.kind=local", "runner.num_cpus=3", "runner.actors=2",
                   "runner.address=ray://h:10001"])
    assert config_fingerprint(other) == base


def test_mos_coverage_off_survives_yaml_reading_off_as_false(tmp_path):
    assert load_config(overrides=["mos.coverage=off"]).mos.coverage == "off"
    path = tmp_path / "job.yaml"
    path.write_text("mos: {coverage: off}\n")
    assert load_config(path).mos.coverage == "off"
    with pytest.raises(ConfigError, match="mos.coverage"):
        load_config(overrides=["mos.coverage=true"])
