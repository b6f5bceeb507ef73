"""Resolve everything a clean job decides once, before any work: models, policy, fingerprint.

The CLI (for ``--dry-run`` and usage errors) and the Ray Jobs entry both call
:func:`prepare_job`; nothing later loads the policy or resolves a model again, and
``CleanConfig.fingerprint`` stays a pure function of the config and the policy digest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audiomill import ingest
from audiomill.config import CleanConfig, ConfigError
from audiomill.curation.policy import Policy, load_policy
from audiomill.jobs.output import check_output
from audiomill.models.registry import ResolvedModel, resolve_model
from audiomill.pipelines.asr import pin_asr_model
from audiomill.pipelines.base import Stage
from audiomill.pipelines.clean import clean_stages
from audiomill.pipelines.contract import check_order, check_policy_columns


@dataclass(frozen=True)
class PreparedJob:
    """A validated job: the config with models pinned, the loaded policy and the fingerprint."""

    cfg: CleanConfig
    fingerprint: str
    policy: Policy | None = None
    models: dict[str, ResolvedModel] = field(default_factory=dict)
    overwrite: bool = False  # replace a dataset of other inputs at the output

    def stages(self) -> list[Stage]:
        """The clean stage list, ending with the writer."""
        return clean_stages(self.cfg, self.fingerprint, self.policy, self.models)

    def models_manifest(self) -> dict[str, dict]:
        return {role: model.manifest_entry() for role, model in self.models.items()}


def config_fingerprint(cfg: CleanConfig, policy: Policy | None = None) -> str:
    """``cfg``'s fingerprint with its policy's digest (the policy is loaded unless given)."""
    if policy is None and cfg.policy:
        policy = load_policy(cfg.policy)
    return cfg.fingerprint(policy.digest() if policy else None)


def pin_section_model(cfg: CleanConfig, models: dict[str, ResolvedModel], section: str, field: str,
                      role: str) -> tuple[CleanConfig, dict[str, ResolvedModel]]:
    """With ``cfg.<section>.enabled``: resolve ``cfg.<section>.<field>`` now (a missing model is a
    usage error before any work) and pin a registry alias to its version, as ``pin_asr_model``
    does for ASR; the resolved model is recorded under ``role``."""
    settings = getattr(cfg, section)
    if not settings.enabled:
        return cfg, models
    model = resolve_model(getattr(settings, field), cfg.models.registry)
    cfg = cfg.model_copy(update={section: settings.model_copy(update={field: model.ref})})
    return cfg, {**models, role: model}


def prepare_job(cfg: CleanConfig, overwrite: bool = False) -> PreparedJob:
    """Validate inputs and output, pin models (``name@production`` -> ``name@N``), load the
    policy, check the stage column contract and compute the fingerprint. Raises
    ConfigError/FileNotFoundError/ValueError for anything a user must fix."""
    if not cfg.output:
        raise ConfigError("output: give --out (or `output:` in the config file)")
    ingest.check_inputs(cfg.inputs)
    ingest.check_output_not_inside_inputs(cfg.inputs, cfg.output)
    check_output(cfg, overwrite)
    cfg, models = pin_asr_model(cfg)
    cfg, models = pin_section_model(cfg, models, "tokenize", "tokenizer", "tokenizer")
    cfg, models = pin_section_model(cfg, models, "speech_music", "model", "speech_music")
    policy = load_policy(cfg.policy) if cfg.policy else None
    prepared = PreparedJob(cfg, config_fingerprint(cfg, policy), policy, models, overwrite)
    produced = check_order(prepared.stages())
    if policy is not None:
        check_policy_columns(policy.required_columns(), produced)
    return prepared
