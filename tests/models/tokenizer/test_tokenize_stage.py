import numpy as np

from audiomill.config import TokenizeConfig
from audiomill.pipelines.tokenize import skip_reason


def test_skip_reasons_for_each_kind_of_bad_segment():
    cfg = TokenizeConfig()
    tone = (0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32)
    nan = tone.copy()
    nan[100] = np.nan
    assert skip_reason(tone, cfg) is None
    assert skip_reason(nan, cfg)[0] == "invalid_audio"
    assert skip_reason(tone[:1600], cfg)[0] == "too_short"
    assert skip_reason(np.zeros(16000, np.float32), cfg)[0] == "silent"
    assert skip_reason(tone * 1e-4, cfg)[0] == "silent"  # -83 dBFS
    assert skip_reason(np.array([], np.float32), cfg)[0] == "too_short"
