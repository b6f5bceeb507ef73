"""Filter policies: loading, each rule exactly, reject details, the policy stage and the report."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from audiomill import schema
from audiomill.jobs.prepare import config_fingerprint
from audiomill.config import DEFAULT_POLICY, load_config
from audiomill.curation.policy import Policy, PolicyError, Rule, evaluate, load_policy, policy_report
from audiomill.pipelines.policy import PolicyStage
from audiomill.schema import RejectReason

POLICY = Policy(name="test", rules={
    schema.Q_SNR_DB: Rule(min=5),
    schema.Q_CLIPPING_RATIO: Rule(max=0.01),
    schema.Q_LOUDNESS_LUFS: Rule(min=-40, max=-10),
})


def segments(**columns) -> pa.Table:
    count = len(next(iter(columns.values())))
    base = {schema.KEY: [f"k{i}" for i in range(count)], schema.SOURCE_ID: [f"s{i}" for i in range(count)],
            schema.AUDIO_DURATION_S: [float(i + 1) for i in range(count)],
            schema.AUDIO: pa.array([np.zeros(4, np.float32).tobytes()] * count, pa.large_binary())}
    return pa.table({**base, **columns})


def write_policy(tmp_path, text: str):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


# -- loading -------------------------------------------------------------------------------------


def test_default_policy_ships_with_the_package_and_names_quality_columns():
    policy = load_policy(DEFAULT_POLICY)
    assert policy.name == "default" and policy.rules
    assert set(policy.required_columns()) <= set(schema.QUALITY_COLUMNS)  # others: missing: pass
    assert load_config().policy == DEFAULT_POLICY


@pytest.mark.parametrize("text, message", [
    ("rules: {q_snr_db: {}}", "needs min, max or both"),
    ("rules: {q_snr_db: {min: 10, max: 5}}", "above max"),
    ("rules: {q_snr_db: {minimum: 10}}", "minimum"),
    ("rulez: {}", "rulez"),
    ("- just a list", "mapping"),
    ("rules: [unclosed", "not valid YAML"),
])
def test_invalid_policy_files_raise_naming_the_problem(tmp_path, text, message):
    with pytest.raises(PolicyError, match=message):
        load_policy(write_policy(tmp_path, text))


def test_missing_policy_file_is_a_config_error(tmp_path):
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(str(tmp_path / "nope.yaml"))


def test_digest_follows_rules_not_formatting(tmp_path):
    a = load_policy(write_policy(tmp_path, "rules: {q_snr_db: {min: 10}}"))
    b = load_policy(write_policy(tmp_path, "# a comment\nname: other\nrules:\n  q_snr_db:\n    min: 10.0\n"))
    c = load_policy(write_policy(tmp_path, "rules: {q_snr_db: {min: 11}}"))
    assert a.digest() == b.digest() != c.digest()


def test_policy_change_changes_the_config_fingerprint(tmp_path):
    loose = write_policy(tmp_path, "rules: {q_snr_db: {min: 10}}")
    fingerprint = config_fingerprint(load_config(policy=loose))
    (tmp_path / "policy.yaml").write_text("rules: {q_snr_db: {min: 20}}")
    assert config_fingerprint(load_config(policy=loose)) != fingerprint
    assert config_fingerprint(load_config(overrides=["policy=null"])) != fingerprint


# -- evaluation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, values, expect_fail", [
    (schema.Q_SNR_DB, [4.99, 5.0, 30.0], [True, False, False]),
    (schema.Q_CLIPPING_RATIO, [0.0, 0.01, 0.0101], [False, False, True]),
    (schema.Q_LOUDNESS_LUFS, [-40.01, -40.0, -10.0, -9.99], [True, False, False, True]),
])
def test_each_rule_is_inclusive_at_its_bounds(name, values, expect_fail):
    policy = Policy(rules={name: POLICY.rules[name]})
    evaluation = evaluate(policy, segments(**{name: values}))
    assert evaluation.failed[:, 0].tolist() == expect_fail
    assert evaluation.passed.tolist() == [not f for f in expect_fail]


def test_detail_names_every_failed_rule_with_its_value():
    table = segments(**{schema.Q_SNR_DB: [3.1, 20.0, 20.0, None],
                        schema.Q_CLIPPING_RATIO: [0.02, 0.0, 0.0, 0.0],
                        schema.Q_LOUDNESS_LUFS: [-50.0, -20.0, -3.25, -20.0]})
    evaluation = evaluate(POLICY, table)
    assert evaluation.details == [
        "q_snr_db=3.1<min 5; q_clipping_ratio=0.02>max 0.01; q_loudness_lufs=-50<min -40",
        None,
        "q_loudness_lufs=-3.25>max -10",
        "q_snr_db=null (min 5)",
    ]
    assert evaluation.failed.tolist() == [[True, True, True], [False, False, False], [False, False, True],
                                          [True, False, False]]


def test_rules_may_name_any_numeric_column_including_later_stages():
    policy = Policy(rules={"asr_avg_logprob": Rule(min=-1.0), schema.AUDIO_DURATION_S: Rule(max=2.5)})
    table = segments(asr_avg_logprob=[-0.5, -2.0, -0.1])
    assert evaluate(policy, table).details == [None, "asr_avg_logprob=-2<min -1", "audio_duration_s=3>max 2.5"]


def test_missing_or_text_column_raises_naming_it():
    with pytest.raises(PolicyError, match="'q_mos'.*numeric columns: audio_duration_s"):
        evaluate(Policy(rules={schema.Q_MOS: Rule(min=3)}), segments(**{schema.Q_SNR_DB: [1.0]}))
    with pytest.raises(PolicyError, match="'key'.*not a number"):
        evaluate(Policy(rules={schema.KEY: Rule(min=3)}), segments(**{schema.Q_SNR_DB: [1.0]}))


# -- the stage -----------------------------------------------------------------------------------


def test_policy_stage_rejects_failing_segments_and_keeps_their_audio():
    table = segments(**{schema.Q_SNR_DB: [3.0, 20.0, 20.0], schema.Q_CLIPPING_RATIO: [0.0, 0.5, 0.0],
                        schema.Q_LOUDNESS_LUFS: [-20.0, -20.0, -20.0]})
    earlier = pa.table({schema.KEY: [None], schema.SOURCE_ID: ["s9"], schema.REJECT_STAGE: ["decode"],
                        schema.REJECT_REASON: [RejectReason.DECODE_ERROR.value], schema.REJECT_DETAIL: ["bad"]})
    out = PolicyStage(POLICY)(pa.concat_tables([table, earlier], promote_options="permissive"))
    rows = {r[schema.SOURCE_ID]: r for r in out.to_pylist()}
    for source, detail in (("s0", "q_snr_db=3<min 5"), ("s1", "q_clipping_ratio=0.5>max 0.01")):
        assert rows[source][schema.KEY] == f"k{source[1]}"
        assert (rows[source][schema.REJECT_STAGE], rows[source][schema.REJECT_REASON]) == ("policy", "policy")
        assert rows[source][schema.REJECT_DETAIL] == detail
        assert rows[source][schema.AUDIO] is not None  # held for `audiomill curate`
    assert rows["s2"][schema.REJECT_REASON] is None
    assert (rows["s9"][schema.REJECT_REASON], rows["s9"][schema.REJECT_DETAIL]) == ("decode_error", "bad")
    assert schema.timing_column("policy") in out.column_names


# -- report --------------------------------------------------------------------------------------


def test_report_counts_hours_per_rule_and_only_that_rule():
    table = segments(**{schema.Q_SNR_DB: [3.0, 3.0, 20.0, 20.0],
                        schema.Q_CLIPPING_RATIO: [0.5, 0.0, 0.5, 0.0],
                        schema.Q_LOUDNESS_LUFS: [-20.0, -20.0, -20.0, -20.0]})
    durations = np.array([3600.0, 1800.0, 900.0, 7200.0])
    report = policy_report(POLICY, evaluate(POLICY, table), durations)
    assert report["total_hours"] == pytest.approx(3.75)
    assert (report["kept_segments"], report["kept_hours"]) == (1, pytest.approx(2.0))
    assert (report["rejected_segments"], report["rejected_hours"]) == (3, pytest.approx(1.75))
    rules = {r["metric"]: r for r in report["rules"]}
    assert rules[schema.Q_SNR_DB] | {} == {"metric": schema.Q_SNR_DB, "min": 5.0, "max": None,
                                          "rejected_segments": 2, "rejected_hours": pytest.approx(1.5),
                                          "only_segments": 1, "only_hours": pytest.approx(0.5)}
    assert (rules[schema.Q_CLIPPING_RATIO]["rejected_hours"], rules[schema.Q_CLIPPING_RATIO]["only_hours"]) == (
        pytest.approx(1.25), pytest.approx(0.25))
    assert rules[schema.Q_LOUDNESS_LUFS]["rejected_segments"] == 0
