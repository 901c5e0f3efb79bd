"""The issue's done-when: the lesson's tf.keras CNN, trained by the lesson's own code,
imports and evaluates on the official test set as Keras' model.evaluate did.

The model (fixtures/keras/lesson-trained.keras) and Keras' figures beside it
(lesson-trained.json) come from bench/keras_lesson.py --save; the test needs the real
Fashion-MNIST files ($CONVLENS_TEST_DATA) and is skipped without them.
"""

from __future__ import annotations

import json

import pytest

from convlens.cli.main import main


@pytest.mark.slow
def test_the_lessons_trained_cnn_evaluates_as_keras_did(
    real_data_dir, keras_fixtures, tmp_path, capsys
) -> None:
    keras = json.loads((keras_fixtures.folder / "lesson-trained.json").read_text())
    want = keras["keras_evaluate_on_the_official_test_set"]
    runs = ["--runs", str(tmp_path)]
    assert (
        main(["import", str(keras_fixtures.path("lesson-trained")), "--name", "lesson", *runs]) == 0
    )
    capsys.readouterr()
    args = ["evaluate", "lesson", "--whole-test-set", "--json", "--data-dir", str(real_data_dir)]
    assert main([*args, *runs]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["test_count"] == want["test_count"] == 10_000
    assert abs(got["test_accuracy"] - want["test_accuracy"]) * 10_000 <= 3  # a few images
    assert abs(got["test_loss"] - want["test_loss"]) <= 1e-3 * want["test_loss"]  # 0.1%
