"""Policy stage: segments failing any rule of the filter policy become reject rows (reason
``policy``, or the code the first failed rule names, e.g. ``language_uncertain``)."""

from __future__ import annotations

import pyarrow as pa

from audiomill import schema
from audiomill.curation.policy import Policy, evaluate
from audiomill.pipelines.base import Resources, Stage, with_rejects


class PolicyStage(Stage):
    """Segment rows in; rows failing a rule get its ``reject_reason`` and a detail naming every
    failed rule and its value. Their audio is kept: the writer holds it so ``audiomill curate`` can
    bring a segment back under a looser policy. Rules may name columns of any earlier stage
    (``q_*``, ``asr_*``); ``pipelines.clean`` places it after them."""

    name = schema.StageName.POLICY.value
    resources = Resources(num_cpus=0.25)
    requires = frozenset({schema.KEY})  # plus every column a rule names (checked against the stage list)

    def __init__(self, policy: Policy) -> None:
        super().__init__()
        self.policy = policy

    def process(self, table: pa.Table) -> pa.Table:
        evaluation = evaluate(self.policy, table)
        return with_rejects(table, self.name, evaluation.reasons, evaluation.details, keep_audio=True)
