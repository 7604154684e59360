"""Resizing pictures and shifting spike pictures (insitu.data.images)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from insitu.data.images import resize_images, shift_images
from insitu.errors import ConfigError

# --- resizing --------------------------------------------------------------------------------


def test_resize_mnist_shaped_input_gives_256_features_and_keeps_mean() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(5, 784, generator=g)
    out = resize_images(images, (28, 28), crop=2)
    assert out.shape == (5, 256) and out.dtype == torch.float32
    cropped = images.reshape(5, 28, 28)[:, 2:26, 2:26]
    assert torch.allclose(out.mean(dim=1), cropped.mean(dim=(1, 2)), atol=1e-6)
    # (N, H, W) input gives the same result as flattened rows.
    assert torch.equal(resize_images(images.reshape(5, 28, 28), (28, 28), crop=2), out)
    assert out.min() >= 0 and out.max() <= 1


def test_resize_is_block_average_for_integer_ratio_and_keeps_constants() -> None:
    images = torch.rand(4, 28, 28, generator=torch.Generator().manual_seed(1))
    out = resize_images(images, (28, 28), size=(14, 14))
    pooled = F.avg_pool2d(images[:, None], 2).reshape(4, 196)
    assert torch.allclose(out, pooled, atol=1e-6)
    flat = resize_images(torch.full((2, 784), 0.37), (28, 28), crop=2)
    assert torch.allclose(flat, torch.full_like(flat, 0.37), atol=1e-6)


def test_resize_fractional_footprint_weights() -> None:
    # 3 pixels -> 2: each output pixel covers 1.5 input pixels.
    row = torch.tensor([[[0.0, 1.0, 0.0]]]).expand(1, 3, 3)
    out = resize_images(row.reshape(1, 9), (3, 3), size=(2, 2))
    # Output pixel 0 covers column 0 fully and half of column 1: (0 + 0.5) / 1.5.
    assert torch.allclose(out, torch.full((1, 4), 1.0 / 3.0), atol=1e-6)


def test_resize_rejects_bad_shapes() -> None:
    with pytest.raises(ConfigError, match="784"):
        resize_images(torch.zeros(2, 100), (28, 28))
    with pytest.raises(ConfigError, match="crop"):
        resize_images(torch.zeros(2, 784), (28, 28), crop=14)
    with pytest.raises(ConfigError, match="crop"):
        resize_images(torch.zeros(2, 784), (28, 28), crop=-1)


def test_shift_images_moves_pictures_and_keeps_spike_times() -> None:
    x = torch.zeros(200, 3, 16)  # 4x4 pictures, 3 steps
    x[:, 1, 5] = 1.0  # pixel (1, 1) fires at step 1
    out = shift_images(x, (4, 4), 1, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.equal(out[:, [0, 2]], x[:, [0, 2]])
    where = out[:, 1].nonzero()[:, 1]
    assert len(where) == 200  # a shift of 1 keeps pixel (1, 1) inside the picture
    rows, cols = where // 4, where % 4
    assert set(rows.tolist()) == {0, 1, 2} and set(cols.tolist()) == {0, 1, 2}
    corner = torch.zeros(50, 1, 16, dtype=torch.bool)
    corner[:, 0, 0] = True
    moved = shift_images(corner, (4, 4), 1, generator=torch.Generator().manual_seed(1))
    assert 0 < int(moved.sum()) < 50  # moved off the picture: lost
    assert torch.equal(shift_images(x, (4, 4), 0, generator=torch.Generator()), x)
    with pytest.raises(ConfigError, match="pictures"):
        shift_images(x, (5, 5), 1, generator=torch.Generator())
