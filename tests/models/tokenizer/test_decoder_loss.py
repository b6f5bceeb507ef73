"""The decoder's training loss: L1 on log-mel frames plus L1 on their frame-to-frame differences."""

from __future__ import annotations

import pytest
import torch

from audiomill.execution.decoder_training import DecoderTraining, mel_loss


def test_delta_term_prefers_a_sharp_transition_over_a_smeared_one_of_equal_l1():
    target = torch.zeros(1, 8, 2)
    target[:, 4:] = 1.0  # a sharp step between two units
    smeared = target.clone()
    smeared[:, 3], smeared[:, 4] = 0.5, 0.5  # the step spread over two frames
    offset = target + 0.125  # sharp, every frame a little off: the same mean L1
    assert float(mel_loss(smeared, target, 0.0)) == pytest.approx(float(mel_loss(offset, target, 0.0)))
    assert float(mel_loss(offset, target, 1.0)) == pytest.approx(float(mel_loss(offset, target, 0.0)))
    assert float(mel_loss(smeared, target, 1.0)) > float(mel_loss(offset, target, 1.0))
    assert float(mel_loss(target, target, 1.0)) == 0.0


def test_training_uses_the_delta_term_by_default():
    assert DecoderTraining().delta_weight == 1.0
