"""A user's own classifier, end to end: registered as `package.module:factory`, a masker trained for it for a few
steps with the trainer as it is (the Lite0 features as its encoder: the user's network has no feature pyramid), then
loaded in engine.Explainer and in the app."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

USER_BLACKBOX = "tests.engine.user_blackbox:tiny"  # 10 classes, 64 x 64 input, no class names
WAIT_MS = 60_000


@pytest.fixture
def user_photos(tmp_path: Path) -> Path:
    """An unlabelled folder of the user's photos: the trainer labels them with the classifier's own top-1."""
    from skimage import data as samples

    folder = tmp_path / "photos"
    folder.mkdir()
    for index, photo in enumerate([samples.chelsea(), samples.coffee(), samples.astronaut(), samples.rocket()]):
        Image.fromarray(photo).resize((80, 64)).save(folder / f"{index}.jpg")
    return folder


def test_a_users_classifier_trains_and_explains_in_the_explainer_and_in_the_app(
    qtbot, make_window, user_photos, video_file, video_frames, tmp_path
):
    from engine import Explainer
    from engine.modelfiles.card import read_card
    from trainer.training.train import main as train

    out = tmp_path / "run"
    tiny_masker = ["--image-size", "64", "--upsampler-channels", "32", "16", "8", "--short-side", "64"]
    code = train(
        ["--blackbox", USER_BLACKBOX, "--encoder", "efficientnet_lite0", "--embedding-init", "random"]
        + ["--data", str(user_photos), "--val-data", "none", "--out", str(out), "--no-progress"]
        + ["--steps", "3", "--batch", "2", "--workers", "1", "--threads", "1", *tiny_masker]
    )
    assert code == 0
    model = out / "model.safetensors"
    card = read_card(model)
    assert card["blackbox"]["name"] == USER_BLACKBOX and card["masker"]["encoder"] == "efficientnet_lite0"
    assert card["classes"] == {"count": 10, "list": "generic"} and card["training"]["steps"] == 3

    with Explainer(model, "torch-cpu", evidence=True) as explainer:
        explanation = explainer.explain(video_frames[0], "class 3")
    assert explanation.target == 3 and explanation.target_name == "class 3"
    assert explanation.mask.shape == video_frames[0].shape[:2] and np.isfinite(explanation.mask).all()
    assert [index for index, _, _ in explanation.top5] and all(0 <= index < 10 for index, _, _ in explanation.top5)
    assert set(explanation.probabilities or {}) == {"frame", "preserved", "destroyed"}

    window = make_window(str(video_file), model=model)
    qtbot.waitUntil(
        lambda: window.current_result is not None and window.current_result.explanation is not None, timeout=WAIT_MS
    )
    assert USER_BLACKBOX in window.status.model_label.full_text()
    assert not window.problems
