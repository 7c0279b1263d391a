"""The Train tab's freezing controls (mtl_app/freeze_controls.py): presets and checkboxes in sync, the summary."""

import pytest
from app_helpers import BACKBONE, make_context

from mtl_app import freeze_controls
from mtl_app.context import UIError


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return make_context(tmp_path_factory.mktemp("saved"), update_seconds=0)  # every step an update


def test_presets_and_checkboxes_round_trip(ctx):
    comps = freeze_controls.components(ctx)
    assert comps == [*BACKBONE, "head.topic", "head.sentiment"]
    assert freeze_controls.preset_for_frozen(ctx, []) == ("none", None)
    assert freeze_controls.preset_for_frozen(ctx, comps) == ("all", None)
    assert freeze_controls.preset_for_frozen(ctx, BACKBONE) == ("backbone", None)
    for k in range(6):
        assert freeze_controls.preset_for_frozen(ctx, freeze_controls.frozen_for_preset(ctx, "bottom", k)) == (
            "bottom",
            k,
        )
    assert freeze_controls.preset_for_frozen(ctx, ["head.topic"]) == ("head.topic", None)
    assert freeze_controls.preset_for_frozen(ctx, ["layer.3", "head.topic"]) == ("custom", None)
    frozen, show_k, _ = freeze_controls.preset_changed(ctx, "bottom", 3, [], "pretrained")
    assert frozen == ["embeddings", "layer.0", "layer.1", "layer.2"] and show_k
    assert freeze_controls.preset_changed(ctx, "custom", 0, ["layer.4"], "pretrained")[0] == ["layer.4"]
    preset, k, show_k, _ = freeze_controls.frozen_changed(ctx, ["embeddings", "layer.0"], "pretrained")
    assert (preset, k, show_k) == ("bottom", 1, True)
    with pytest.raises(UIError, match="Unknown component"):
        freeze_controls.frozen_changed(ctx, ["layer.9"], "pretrained")


def test_trainable_summary_counts_and_explains(ctx):
    assert "Trainable: 4,235 of" in freeze_controls.trainable_summary(ctx, BACKBONE)
    everything = freeze_controls.trainable_summary(ctx, freeze_controls.components(ctx))
    assert "Trainable: 0 of" in everything and "Everything is frozen" in everything
    # measured (results/sweep.json): a frozen random head's task still learns through a trainable encoder
    assert "still learns" in freeze_controls.trainable_summary(ctx, ["head.topic"], "pretrained")
    assert "stays at chance" in freeze_controls.trainable_summary(ctx, [*BACKBONE, "head.topic"], "pretrained")
    assert "30" in freeze_controls.trainable_summary(ctx, BACKBONE)
    assert "kept fixed" in freeze_controls.trainable_summary(ctx, ["head.topic"], "active")
