"""Speech/music stage: ``q_speech_prob`` per segment from the trained classifier.

It is a stage of its own, like MOS, so that its cost shows separately in the part stats.
"""

from __future__ import annotations

import pyarrow as pa

from audiomill import schema
from audiomill.config import SpeechMusicConfig
from audiomill.models.registry import ResolvedModel
from audiomill.models.speech_music import SpeechMusicModel
from audiomill.pipelines.base import Resources, Stage
from audiomill.pipelines.quality import pcm_batch


class SpeechMusicStage(Stage):
    """Segment rows in; the same rows with ``q_speech_prob`` (null where a segment is too short
    or silent to judge)."""

    name = schema.StageName.SPEECH_MUSIC.value
    resources = Resources(num_cpus=1.0)
    requires = frozenset({schema.AUDIO, schema.KEY})
    adds = frozenset({schema.Q_SPEECH_PROB})

    def __init__(self, cfg: SpeechMusicConfig, model: ResolvedModel, cache_dir: str = "") -> None:
        super().__init__()
        self.cfg = cfg
        self.resolved = model
        self.cache_dir = cache_dir
        self.model: SpeechMusicModel | None = None

    def setup(self) -> None:
        self.model = SpeechMusicModel.load(self.resolved.local_dir(self.cache_dir))

    def process(self, table: pa.Table) -> pa.Table:
        assert self.model is not None, "setup() not called"
        samples, offsets = pcm_batch(table[schema.AUDIO])
        clips = [samples[offsets[i]:offsets[i + 1]] for i in range(table.num_rows)]
        probs = self.model.speech_probability(clips)
        return table.append_column(schema.Q_SPEECH_PROB, pa.array(probs, pa.float64(), from_pandas=True))
