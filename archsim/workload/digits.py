"""The 8x8 handwritten digits data set (scikit-learn's `load_digits`) with a fixed train/test split.

`load_digits_split` loads the 1797 8x8 grey-scale images bundled with scikit-learn (no download),
scales the pixels from 0..16 to [0, 1] and returns them in NCHW layout, shape (n, 1, 8, 8). The
split is `sklearn.model_selection.train_test_split(test_size=0.25, random_state=0,
stratify=labels)`: 1347 training and 450 test images, with the class proportions kept in both. It
is the split the trained `workloads/digits-*.npz` networks were trained and scored on, so the
simulator and the training script see the same test images.
"""

from __future__ import annotations

import numpy as np

#: Fraction of the images held out for testing.
TEST_SIZE = 0.25
#: Seed of the scikit-learn split (`random_state`).
SPLIT_SEED = 0
#: Largest pixel value in the raw data (pixels are integers 0..16).
PIXEL_MAX = 16.0


def load_digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load the digits data set and split it into training and test sets.

    The split is stratified and fixed (`test_size=0.25`, `random_state=0`), so repeated calls
    return identical arrays.

    Returns:
        `(x_train, y_train, x_test, y_test)`: images as float32 arrays of shape (n, 1, 8, 8) in
        [0, 1] (raw pixel / 16, dimensionless), labels as int64 arrays of shape (n,) with values
        0..9. n is 1347 for the training set and 450 for the test set.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = (data.images / PIXEL_MAX).astype(np.float32).reshape(-1, 1, 8, 8)
    labels = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=labels
    )
    return x_train, y_train, x_test, y_test
