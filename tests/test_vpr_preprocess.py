"""VPR preprocessing (hand-computed cases, a slow reference) and image dataset folders."""

import math

import numpy as np
import pytest

from edgesnn.errors import DataError, InputError, ModelFileError
from edgesnn.models.vpr import images
from edgesnn.models.vpr.preprocess import (
    Preprocessing, gamma_correct, patch_normalise, preprocess, resize, to_grey,
)

# ---------------------------------------------------------------- preprocessing

# A 3x3 image with no symmetry, so centre and corner windows give distinct values.
IMG3 = np.array([[3, 0, 8],
                 [1, 5, 2],
                 [6, 4, 7]], dtype=np.float64)


def test_to_grey_uses_601_luma_and_ignores_alpha():
    rgb = np.array([[[[10, 20, 30]]]], dtype=np.uint8)
    expected = 0.299 * 10 + 0.587 * 20 + 0.114 * 30  # 18.15
    assert to_grey(rgb).shape == (1, 1, 1)
    assert to_grey(rgb)[0, 0, 0] == pytest.approx(expected, rel=1e-6)
    rgba = np.array([[[[10, 20, 30, 200]]]], dtype=np.uint8)
    assert to_grey(rgba)[0, 0, 0] == pytest.approx(expected, rel=1e-6)
    grey = np.array([[[7.5, 9]]])
    assert to_grey(grey).dtype == np.float32
    np.testing.assert_array_equal(to_grey(grey), grey)
    with pytest.raises(InputError, match="channels"):
        to_grey(np.zeros((1, 2, 2, 2)))


def test_gamma_moves_mean_towards_mid_grey_and_clips():
    img = np.array([[[0, 64], [128, 255]]], dtype=np.float64)
    g = math.log(127.5) / math.log((0 + 64 + 128 + 255) / 4)  # mean 111.75 -> g > 1
    expected = [[0, 64 ** g], [128 ** g, 255]]  # 255 ** g > 255 is clipped
    assert 255 ** g > 255
    np.testing.assert_allclose(gamma_correct(img)[0], expected, rtol=1e-5)


def test_gamma_leaves_nearly_black_and_white_images_and_works_per_image():
    dark = np.full((4, 4), 0.5)
    white = np.full((4, 4), 254.5)
    normal = np.array([[200.0, 220.0], [180.0, 240.0]]).repeat(2, 0).repeat(2, 1)
    out = gamma_correct(np.stack([dark, white, normal]))
    np.testing.assert_array_equal(out[0], dark)
    np.testing.assert_array_equal(out[1], white)
    g = math.log(127.5) / math.log(210.0)
    np.testing.assert_allclose(out[2], normal ** g, rtol=1e-5)


def test_resize_4x4_to_2x2_is_block_means():
    img = np.arange(16, dtype=np.float64).reshape(1, 4, 4)
    expected = img[0].reshape(2, 2, 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(resize(img, (2, 2))[0], expected, rtol=1e-6)


def test_resize_3x3_to_2x2_weights_fractional_overlaps():
    # each output pixel covers 1.5 input pixels per axis: weights (2/3, 1/3, 0) and (0, 1/3, 2/3)
    out = resize(IMG3[None], (2, 2))[0]
    assert out[0, 0] == pytest.approx((4 * 3 + 2 * 0 + 2 * 1 + 1 * 5) / 9, rel=1e-6)
    assert out[1, 1] == pytest.approx((1 * 5 + 2 * 2 + 2 * 4 + 4 * 7) / 9, rel=1e-6)
    assert out[0, 1] == pytest.approx((2 * 0 + 4 * 8 + 1 * 5 + 2 * 2) / 9, rel=1e-6)


def test_resize_keeps_the_mean_when_shrinking_and_enlarging():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (2, 9, 14))
    for size in [(4, 5), (13, 31), (9, 14)]:
        out = resize(img, size)
        assert out.shape == (2, *size)
        np.testing.assert_allclose(out.mean(axis=(1, 2)), img.mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(resize(img, (9, 14)), img, rtol=1e-6)  # same size: identity


def test_patch_normalise_3x3_centre_and_corner_by_hand():
    out = patch_normalise(IMG3[None], patch=3)[0]
    # centre: the whole image, mean 4, population variance 60/9
    z = (5 - 4) / math.sqrt(60 / 9)
    assert out[1, 1] == pytest.approx((z + 1) / 2, rel=1e-6)
    # corner (0, 0): only its 2x2 neighbourhood {3, 0, 1, 5}, mean 2.25, variance 14.75/4
    z = (3 - 2.25) / math.sqrt(14.75 / 4)
    assert out[0, 0] == pytest.approx((z + 1) / 2, rel=1e-6)
    # pixel (0, 1) = 0: window {3, 0, 8, 1, 5, 2}, z below -1 is clipped to 0
    assert out[0, 1] == 0.0


def test_patch_normalise_flat_image_is_half():
    out = patch_normalise(np.full((2, 5, 6), 100.3), patch=3)
    np.testing.assert_array_equal(out, 0.5)


def slow_patch_normalise(img: np.ndarray, patch: int) -> np.ndarray:
    half = patch // 2
    padded = np.pad(img.astype(np.float64), half, constant_values=np.nan)
    out = np.empty(img.shape)
    for r in range(img.shape[0]):
        for c in range(img.shape[1]):
            window = padded[r:r + patch, c:c + patch]
            mu, sigma = np.nanmean(window), np.nanstd(window)
            out[r, c] = 0.5 if sigma == 0 else (np.clip((img[r, c] - mu) / sigma, -1, 1) + 1) / 2
    return out


@pytest.mark.parametrize("patch", [1, 3, 5, 7])
def test_patch_normalise_matches_slow_nan_padded_reference(patch):
    rng = np.random.default_rng(patch)
    imgs = rng.uniform(0, 255, (3, 10, 12))
    out = patch_normalise(imgs, patch)
    assert out.dtype == np.float32
    for img, got in zip(imgs, out):
        np.testing.assert_allclose(got, slow_patch_normalise(img, patch), atol=1e-6)


def test_patch_normalise_rejects_even_or_zero_patch():
    for patch in (0, 2, -1):
        with pytest.raises(InputError, match="odd"):
            patch_normalise(np.zeros((1, 4, 4)), patch)


def test_batch_equals_per_image_results():
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (4, 30, 40, 3), dtype=np.uint8)
    batch = preprocess(imgs, (8, 10), 3)
    single = np.concatenate([preprocess(img, (8, 10), 3) for img in imgs])
    np.testing.assert_allclose(batch, single, atol=1e-6)


def test_preprocess_shape_range_and_single_images():
    rng = np.random.default_rng(2)
    imgs = rng.uniform(0, 255, (5, 48, 64))
    out = preprocess(imgs)
    assert out.shape == (5, 28 * 28) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1 and out.std() > 0.1
    assert preprocess(imgs[0]).shape == (1, 784)
    assert preprocess(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (10, 12)).shape == (1, 120)
    assert preprocess(rng.integers(0, 256, (48, 64, 4), dtype=np.uint8), (10, 12)).shape == (1, 120)
    assert preprocess(imgs, gamma=False).shape == (5, 784)


@pytest.mark.parametrize("images, message", [
    (np.zeros((0, 8, 8)), "empty"),
    (np.zeros((2, 8, 8, 2)), "channels"),
    (np.zeros((1, 2, 8, 8, 3)), "shape"),
    (np.zeros(8), "shape"),
    (np.array([[[1.0, np.nan], [2.0, 3.0]]]), "NaN"),
    (np.array([[[1.0, np.inf], [2.0, 3.0]]]), "NaN or Inf"),
    (np.array([[[1.0, -2.0], [2.0, 3.0]]]), "negative"),
    (np.array([["a", "b"], ["c", "d"]]), "dtype"),
])
def test_preprocess_rejects_bad_images(images, message):
    with pytest.raises(InputError, match=message):
        preprocess(images, (2, 2), 1)


def test_preprocess_rejects_bad_settings():
    img = np.zeros((1, 8, 8))
    with pytest.raises(InputError, match="at least 1x1"):
        preprocess(img, (0, 4), 1)
    with pytest.raises(InputError, match="larger than"):
        preprocess(img, (6, 4), 5)
    with pytest.raises(InputError, match="odd"):
        preprocess(img, (6, 6), 4)


def test_preprocessing_call_and_metadata_round_trip():
    p = Preprocessing(size=(12, 16), patch=5, gamma=False)
    img = np.random.default_rng(3).uniform(0, 255, (2, 24, 32))
    np.testing.assert_array_equal(p(img), preprocess(img, (12, 16), 5, False))
    assert p.features == 192
    meta = p.to_metadata()
    import json
    assert Preprocessing.from_metadata(json.loads(json.dumps(meta))) == p
    assert Preprocessing.from_metadata(Preprocessing().to_metadata()) == Preprocessing()


@pytest.mark.parametrize("meta", [
    None,
    [28, 28],
    {"size": [28, 28], "patch": 7},
    {"size": [28, 28], "patch": 7, "gamma": True, "blur": 2},
    {"size": [28], "patch": 7, "gamma": True},
    {"size": [28, "28"], "patch": 7, "gamma": True},
    {"size": [28, 28], "patch": 6, "gamma": True},
    {"size": [28, 28], "patch": 7.0, "gamma": True},
    {"size": [0, 28], "patch": 1, "gamma": True},
    {"size": [4, 4], "patch": 7, "gamma": True},
    {"size": [28, 28], "patch": 7, "gamma": "yes"},
])
def test_bad_preprocessing_metadata(meta):
    with pytest.raises(ModelFileError):
        Preprocessing.from_metadata(meta)


# ---------------------------------------------------------------- image folders

@pytest.fixture
def Image():
    """Pillow, to write test images; the image tests skip without the vpr extra."""
    return pytest.importorskip("PIL.Image")


SMALL = Preprocessing(size=(6, 8), patch=3)


def random_rgb(seed: int, shape=(24, 32)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def write_images(folder, names, shape=(24, 32), seed=0) -> dict:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for k, name in enumerate(names):
        arrays[name] = random_rgb(seed + k, shape)
        Image.fromarray(arrays[name]).save(folder / name)
    return arrays


def test_list_images_natural_order_and_filters(tmp_path, Image):
    write_images(tmp_path, ["frame10.png", "frame2.jpg", "frame1.PNG"])
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub.png").mkdir()
    (tmp_path / "._frame3.png").write_bytes(b"macOS junk")
    assert [p.name for p in images.list_images(tmp_path)] == [
        "frame1.PNG", "frame2.jpg", "frame10.png"]


def test_list_images_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        images.list_images(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(DataError, match="not a folder"):
        images.list_images(tmp_path / "file.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        images.list_images(tmp_path / "empty")


def test_load_images_matches_in_memory_preprocessing(tmp_path, Image):
    arrays = write_images(tmp_path, ["frame1.png", "frame2.png", "frame10.png"])
    Image.fromarray(random_rgb(9)).save(tmp_path / "frame3.jpg")
    paths = images.list_images(tmp_path)
    out = images.load_images(paths, SMALL, batch=2)
    assert out.shape == (4, 48) and out.dtype == np.float32
    png = [p for p in paths if p.suffix == ".png"]
    expected = SMALL(np.stack([arrays[p.name] for p in png]))
    np.testing.assert_allclose(images.load_images(png, SMALL), expected, atol=1e-6)


def test_load_images_mixed_sizes_grey_and_palette(tmp_path, Image):
    a = random_rgb(1, (24, 32))
    b = random_rgb(2, (30, 20))
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    Image.fromarray(a).convert("L").save(tmp_path / "c.png")
    Image.fromarray(a).convert("P").save(tmp_path / "d.png")
    out = images.load_images(images.list_images(tmp_path), SMALL)
    assert out.shape == (4, 48)
    np.testing.assert_allclose(out[:2], np.concatenate([SMALL(a), SMALL(b)]), atol=1e-6)
    assert images.load_images([], SMALL).shape == (0, 48)


def test_corrupt_image_names_the_file(tmp_path, Image):
    write_images(tmp_path, ["a.png"])
    (tmp_path / "x.png").write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(DataError, match="x.png"):
        images.load_images(images.list_images(tmp_path), SMALL)


def test_load_reference_and_query(tmp_path, Image):
    write_images(tmp_path / "reference", ["1.png", "2.png", "3.png"])
    write_images(tmp_path / "query", ["q2.png", "q1.png"], seed=5)
    ref = images.load_reference(tmp_path / "reference", SMALL)
    assert ref.shape == (1, 3, 48)
    feats, names = images.load_query(tmp_path / "query", SMALL)
    assert feats.shape == (2, 48) and names == ["q1.png", "q2.png"]


def test_reference_traverse_subfolders(tmp_path, Image):
    ref = tmp_path / "reference"
    spring = write_images(ref / "spring", ["p1.png", "p2.png"])
    fall = write_images(ref / "fall", ["p1.png", "p2.png"], seed=7)
    out = images.load_reference(ref, SMALL)
    assert out.shape == (2, 2, 48)
    np.testing.assert_allclose(out[0], SMALL(np.stack(list(fall.values()))), atol=1e-6)
    np.testing.assert_allclose(out[1], SMALL(np.stack(list(spring.values()))), atol=1e-6)
    write_images(ref / "winter", ["p1.png"])
    with pytest.raises(DataError, match="fall 2, spring 2, winter 1"):
        images.load_reference(ref, SMALL)
    write_images(ref, ["stray.png"])
    with pytest.raises(DataError, match="both images and subfolders"):
        images.load_reference(ref, SMALL)
    with pytest.raises(DataError, match="no such folder"):
        images.load_reference(tmp_path / "nope", SMALL)


QUERIES = ["q0.png", "q1.png", "q2.png"]


def test_ground_truth_by_index_and_by_name(tmp_path):
    gt = tmp_path / "gt.csv"
    gt.write_text("query,reference\n0,4\n0,3\n2,1\n0,4\n")
    assert images.read_ground_truth(gt, QUERIES, 5) == [[3, 4], [], [1]]
    gt.write_text("\ufeffReference , Query, note\n2,q1.png,x\n\n0,q0.png,\n")
    assert images.read_ground_truth(gt, QUERIES, 5) == [[0], [2], []]


@pytest.mark.parametrize("text, message", [
    ("q,r\n0,1\n", "columns 'query' and 'reference'"),
    ("query,reference\nq9.png,1\n", "unknown query 'q9.png'"),
    ("query,reference\n3,1\n", "query 3 out of range"),
    ("query,reference\n0,5\n", "reference 5 out of range"),
    ("query,reference\n0,-1\n", "reference -1 out of range"),
    ("query,reference\n0,r1.png\n", "must be a place index"),
    ("query,reference\n0\n", "row 2 has 1 cells"),
    ("", "empty file"),
])
def test_ground_truth_errors(tmp_path, text, message):
    gt = tmp_path / "gt.csv"
    gt.write_text(text)
    with pytest.raises(DataError, match=message):
        images.read_ground_truth(gt, QUERIES, 5)


def test_ground_truth_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        images.read_ground_truth(tmp_path / "gt.csv", QUERIES, 5)
