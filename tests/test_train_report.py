"""The training report's normalised accuracy A*(t), checked on published rows."""

from __future__ import annotations

import pytest

from archsim.train.report import a_star


@pytest.mark.parametrize(
    ("e_fp", "e_1y", "published"),
    [
        (30.50, 33.43, 95.8),  # ResNet-18 ImageNet (RA23 Table 3 via LG25)
        (23.87, 27.21, 95.6),  # ResNet-50 ImageNet
        (14.05, 14.42, 99.6),  # Speech SWB300
        (20.00, 21.12, 98.6),  # WRN-16 CIFAR-100
    ],
)
def test_a_star_reproduces_the_published_one_year_column(e_fp, e_1y, published):
    """A* = (100 - e(t)) / (100 - e_FP) in %, from the errors in %, rounded as published."""
    assert round(a_star(100 - e_1y, 100 - e_fp), 1) == published


def test_a_star_without_a_float_accuracy_is_nan():
    assert a_star(50.0, 0.0) != a_star(50.0, 0.0)


def test_drift_rows_of_a_sequence_model_use_the_perplexity_ratio():
    """A language model is judged on perplexity: float 4.0, 5.0 after drift -> A* = 80 %."""
    from types import SimpleNamespace

    from archsim.train.report import drift_rows

    result = SimpleNamespace(
        float_perplexity=4.0,
        float_accuracy=None,
        points=[SimpleNamespace(t_s=1.0, perplexity=5.0, accuracy=None)],
    )
    (row,) = drift_rows(result)
    assert row == {"t_s": 1.0, "perplexity": 5.0, "float_perplexity": 4.0, "a_star": 80.0}
