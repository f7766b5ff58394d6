"""Digit scenes, joint augmentation, and the Cityscapes / CamVid loaders on tiny on-disk copies."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from saswot_gp.datasets import (CamVidSeg, CityscapesSeg, DigitScenes, eval_transform, get_dataset, source_indices,
                                train_transform)
from saswot_gp.errors import SaswotError

torch.set_num_threads(1)


def test_digits_deterministic_for_a_seed():
    a, b = DigitScenes("train", 6, seed=3), DigitScenes("train", 6, seed=3, cache=False)
    c = DigitScenes("train", 6, seed=4)
    for i in range(6):
        (xa, ya), (xb, yb) = a[i], b[i]
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not all(torch.equal(a[i][0], c[i][0]) for i in range(6))
    # random access gives the same scene regardless of order
    fresh = DigitScenes("train", 6, seed=3, cache=False)
    assert torch.equal(fresh[5][1], a[5][1])


def test_splits_use_disjoint_source_images():
    parts = [set(source_indices(s).tolist()) for s in ("train", "val", "test")]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert len(parts[0] | parts[1] | parts[2]) == 1797
    for split, part in zip(("train", "val", "test"), parts):
        ds = DigitScenes(split, 20, seed=0)
        used = {src for i in range(len(ds)) for src, _ in ds.scene(i)[2]}
        assert used <= part
    # same index, different split -> different scene
    assert not torch.equal(DigitScenes("train", 1)[0][1], DigitScenes("val", 1)[0][1])


def test_digit_labels_range_and_shapes():
    ds = DigitScenes("val", 10, image_size=(48, 80), seed=1, min_digits=2, max_digits=4)
    assert len(ds) == 10 and ds.num_classes == 11
    seen = set()
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == (3, 48, 80) and x.dtype == torch.float32
        assert y.shape == (48, 80) and y.dtype == torch.int64
        labels = set(y.unique().tolist())
        digits = {d + 1 for _, d in ds.scene(i)[2]}
        assert 0 in labels and labels - {0} <= digits and labels - {0}
        seen |= labels
    assert seen <= set(range(11))
    rim = DigitScenes("val", 5, seed=1, ignore_border=True)
    vals = set(torch.cat([rim[i][1].flatten() for i in range(5)]).unique().tolist())
    assert 255 in vals and vals - {255} <= set(range(11))


def test_difficulty_knobs_change_scenes():
    def fg(**kw):
        ds = DigitScenes("train", 12, seed=0, **kw)
        return float(torch.stack([ds[i][1] for i in range(12)]).gt(0).float().mean())

    assert fg(bold=0.0) < fg(bold=0.5) < fg(bold=1.0)
    assert fg(scale_range=(0.2, 0.3)) < fg(scale_range=(0.6, 0.8))
    counts = {len(DigitScenes("val", 10, min_digits=2, max_digits=2).scene(i)[2]) for i in range(10)}
    assert counts == {2}


def test_digit_images_are_normalised():
    ds = DigitScenes("test", 4, seed=2)
    raw = DigitScenes("test", 4, seed=2, transform=eval_transform(normalize=False))
    x, xr = ds[0][0], raw[0][0]
    assert 0.0 <= xr.min() and xr.max() <= 1.0
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    assert torch.allclose(x, (xr - mean) / std, atol=1e-5)


def _block_sample(seed=0, h=32, w=48):
    g = torch.Generator().manual_seed(seed)
    blocks = torch.randint(0, 11, (h // 8, w // 8), generator=g, dtype=torch.uint8)
    mask = blocks.repeat_interleave(8, 0).repeat_interleave(8, 1)
    image = (mask * 20).expand(3, h, w).clone()
    return image, mask


def test_augmentation_keeps_image_and_mask_aligned_nearest():
    image, mask = _block_sample()
    tf = train_transform((40, 40), scale_range=(0.5, 2.0), normalize=False,
                         interpolation=v2.InterpolationMode.NEAREST)
    outs = []
    for s in range(20):
        torch.manual_seed(s)
        x, y = tf(image, mask)
        assert x.shape == (3, 40, 40) and y.shape == (40, 40) and y.dtype == torch.int64
        value = torch.round(x * 255 / 20).long()
        valid = y != 255
        assert torch.equal(value[0][valid], y[valid])
        assert torch.all(x[:, ~valid] == 0)  # image padding where the mask is padded with ignore
        outs.append(y)
    assert any((o == 255).any() for o in outs) and any(not (o == 255).any() for o in outs)
    assert len({tuple(o.flatten().tolist()) for o in outs}) > 10


def test_augmentation_bilinear_mostly_aligned_and_flips():
    image, mask = _block_sample(1)
    tf = train_transform((32, 48), scale_range=(0.75, 1.5), normalize=False)
    for s in range(10):
        torch.manual_seed(s)
        x, y = tf(image, mask)
        # away from block edges (3x3 neighbourhood of one label) bilinear values equal the label
        pad = torch.nn.functional.pad(y[None, None].float(), (1, 1, 1, 1), mode="replicate")
        nb = torch.nn.functional.unfold(pad, 3)[0].reshape(9, *y.shape)
        interior = (nb == y.float()).all(0) & (y != 255)
        assert interior.sum() > 50
        agree = (torch.round(x[0] * 255 / 20).long() == y)[interior].float().mean()
        assert agree > 0.98
    flip_only = train_transform((32, 48), scale_range=(1.0, 1.0), normalize=False)
    flipped = set()
    for s in range(10):
        torch.manual_seed(s)
        x, y = flip_only(image, mask)
        assert torch.equal(torch.round(x[0] * 255 / 20).long(), y)
        flipped.add(torch.equal(y, mask.flip(-1).long()))
    assert flipped == {True, False}


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_cityscapes_loader_maps_train_ids(tmp_path):
    ids = np.array([[7, 8, 26, 0], [33, 24, 11, 1], [21, 23, 4, 255]], dtype=np.uint8)
    want = np.array([[0, 1, 13, 255], [18, 11, 2, 255], [8, 10, 255, 255]])
    for city, n in (("zurich", 1), ("aachen", 2)):
        for k in range(n):
            stem = f"{city}_00000{k}_000019"
            rgb = np.full((3, 4, 3), 40 * k + 10, dtype=np.uint8)
            _png(tmp_path / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png", rgb)
            _png(tmp_path / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png", (ids + k * 0).astype(np.uint8))
    ds = CityscapesSeg(str(tmp_path), split="val")
    assert len(ds) == 3 and ds.num_classes == 19
    assert "aachen_000000" in ds.base.images[0] and "zurich" in ds.base.images[2]
    x, y = ds[1]
    assert x.shape == (3, 3, 4) and y.dtype == torch.int64
    assert torch.equal(y, torch.from_numpy(want))
    raw = CityscapesSeg(str(tmp_path), split="val", transform=eval_transform(normalize=False))
    assert torch.allclose(raw[1][0], torch.full((3, 3, 4), 50 / 255))
    assert isinstance(get_dataset("cityscapes", "val", root=str(tmp_path)), CityscapesSeg)


def test_cityscapes_missing_or_incomplete_is_a_clear_error(tmp_path):
    with pytest.raises(SaswotError, match="leftImg8bit"):
        CityscapesSeg(str(tmp_path / "nope"))
    with pytest.raises(SaswotError, match="gtFine"):
        CityscapesSeg(str(tmp_path), split="train")
    with pytest.raises(SaswotError, match="needs root"):
        get_dataset("cityscapes", "train")


def test_camvid_loader_maps_void_to_ignore(tmp_path):
    lab = np.array([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]], dtype=np.uint8)
    for split in ("train", "val", "test"):
        for name in ("0001TP_006690", "Seq05VD_f00000"):
            _png(tmp_path / split / f"{name}.png", np.full((3, 4, 3), 128, dtype=np.uint8))
            _png(tmp_path / f"{split}annot" / f"{name}.png", lab)
    ds = CamVidSeg(str(tmp_path), split="test")
    assert len(ds) == 2 and ds.num_classes == 11
    x, y = ds[0]
    assert x.shape == (3, 3, 4) and x.dtype == torch.float32
    want = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 255]])
    assert torch.equal(y, want)
    aug = CamVidSeg(str(tmp_path), split="train", transform=train_transform((6, 6), scale_range=(1.0, 1.0)))
    x, y = aug[1]
    assert x.shape == (3, 6, 6) and (y == 255).sum() >= 36 - 12
    (tmp_path / "valannot" / "Seq05VD_f00000.png").unlink()
    with pytest.raises(SaswotError, match="no label"):
        CamVidSeg(str(tmp_path), split="val")
    with pytest.raises(SaswotError, match="not found"):
        CamVidSeg(str(tmp_path / "missing"), split="train")


def test_get_dataset_rejects_unknown_names():
    with pytest.raises(SaswotError, match="unknown data set"):
        get_dataset("imagenet")
    with pytest.raises(SaswotError, match="unknown digits split"):
        DigitScenes("dev")
    assert isinstance(get_dataset("digits", "val", num_images=2), DigitScenes)


def test_scene_cache_is_shared_between_instances_with_the_same_settings():
    from saswot_gp.datasets.digits import DigitScenes
    a = DigitScenes("train", num_images=3, image_size=32, seed=11)
    img, lab, placed = a.scene(1)
    b = DigitScenes("train", num_images=5, image_size=32, seed=11)
    assert b.scene(1)[0] is img                                  # same settings: the stored scene
    c = DigitScenes("train", num_images=3, image_size=32, seed=11, texture=0.0)
    assert c.scene(1)[0] is not img and not np.array_equal(c.scene(1)[0], img)
    fresh = DigitScenes("train", num_images=3, image_size=32, seed=11, cache=False).scene(1)
    assert np.array_equal(fresh[0], img) and np.array_equal(fresh[1], lab) and fresh[2] == placed
