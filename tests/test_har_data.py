"""HAR data: the in-memory dataset, its checks and splits, and every source format."""

from pathlib import Path

import numpy as np
import pytest

from edgesnn.data import har
from edgesnn.data.har import HarDataset
from edgesnn.errors import DataError

BASICMOTIONS = Path(__file__).resolve().parents[2] / "shared" / "data" / "har_basicmotions"


def small_dataset(subjects=True, n_per_class=6, n_subjects=6, seed=0) -> HarDataset:
    rng = np.random.default_rng(seed)
    n = 3 * n_per_class
    return HarDataset(rng.normal(size=(n, 5, 2)).astype(np.float32),
                      np.repeat(np.arange(3), n_per_class), ["a", "b", "c"], ["u", "v"],
                      np.arange(n) % n_subjects if subjects else None, rate_hz=10.0)


# ---------------------------------------------------------------- WISDM fixtures

RATE = 20.0
FREQ = 0.5  # Hz: slow enough that linear interpolation of ~20 Hz samples is accurate to 1e-2
OFFSET = {"acc": (10.0, 20.0, 30.0), "gyro": (-10.0, -20.0, -30.0)}  # tells the channels apart
WORD = {"acc": "accel", "gyro": "gyro"}


def signal(sensor: str, t_s: np.ndarray) -> np.ndarray:
    """The raw value of each axis at absolute time t (s): a per-axis offset plus a sine."""
    return np.stack([OFFSET[sensor][k] + np.sin(2 * np.pi * FREQ * t_s + k) for k in range(3)], 1)


def sample_ns(rng, start_ns: int, spans: list[tuple[float, float]]) -> np.ndarray:
    """Timestamps near RATE within each (from, to) span in seconds, jittered by ±5 ms."""
    t = np.concatenate([np.arange(a, b, 1 / RATE) for a, b in spans])
    t = t + rng.uniform(-0.005, 0.005, size=len(t))
    return start_ns + np.round(t * 1e9).astype(np.int64)


def recording_lines(rng, subject: int, code: str, sensor: str, stamps: np.ndarray) -> list[str]:
    values = signal(sensor, stamps * 1e-9)
    lines = [f"{subject},{code},{ns},{x:.7f},{y:.7f},{z:.7f};" for ns, (x, y, z) in zip(stamps, values)]
    lines.append(lines[len(lines) // 2])  # a repeated timestamp, as in the real files
    order = rng.permutation(len(lines))  # the loader must not rely on file order
    return [lines[i] for i in order]


# recording spans in s: accel and gyro cover different, overlapping stretches
SPANS = {"acc": [(0.0, 10.7)], "gyro": [(0.13, 10.6)]}  # overlap ~10.47 s -> 210 grid points
GAP_SPANS = {"acc": [(0.0, 4.5), (7.5, 12.0)], "gyro": [(0.02, 4.5), (7.52, 12.0)]}
CODES = ("A", "F", "P")  # walking, typing, dribbling


def recording_start(subject: int, code: str) -> int:
    return 10**14 + (subject - 1600) * 10**12 + "ABCDEFGHIJKLMOPQRS".index(code) * 10**11


def write_wisdm(root: Path, subjects=(1600, 1601, 1602), codes=CODES, spans=SPANS,
                flat=False, sensors=("acc", "gyro"), seed=0) -> dict:
    """Raw WISDM-format files; returns the timestamps written per (sensor, subject, code)."""
    rng = np.random.default_rng(seed)
    written = {}
    for sensor in sensors:
        folder = root if flat else root / "watch" / WORD[sensor]
        folder.mkdir(parents=True, exist_ok=True)
        for subject in subjects:
            lines = []
            for code in codes:
                stamps = sample_ns(rng, recording_start(subject, code), spans[sensor])
                written[sensor, subject, code] = stamps
                lines += recording_lines(rng, subject, code, sensor, stamps) + [""]
            path = folder / f"data_{subject}_{WORD[sensor]}_watch.txt"
            path.write_text("\n".join(lines) + "\n")
    return written


@pytest.fixture
def wisdm_root(tmp_path):
    write_wisdm(tmp_path)
    return tmp_path


# ---------------------------------------------------------------- WISDM


def test_wisdm_windows_shape_labels_and_subjects(wisdm_root):
    ds = har.load_wisdm(wisdm_root)
    assert ds.x.shape == (3 * 3 * 5, 40, 6)  # 210 grid points -> 5 windows of 2 s per recording
    assert ds.x.dtype == np.float32
    assert ds.classes == ["walking", "typing", "dribbling"]  # WISDM code order
    assert ds.channels == ["acc_x", "gyro_x", "acc_y", "gyro_y", "acc_z", "gyro_z"]
    assert ds.rate_hz == 20.0
    assert np.bincount(ds.y).tolist() == [15, 15, 15]
    assert sorted(set(ds.subjects.tolist())) == [1600, 1601, 1602]
    assert all(np.bincount(ds.y[ds.subjects == s]).tolist() == [5, 5, 5] for s in (1600, 1601, 1602))


def test_wisdm_channel_order_follows_the_request(wisdm_root):
    interleaved = har.load_wisdm(wisdm_root)
    assert np.allclose(interleaved.x.mean(axis=(0, 1)), [10, -10, 20, -20, 30, -30], atol=0.5)
    picked = har.load_wisdm(wisdm_root, channels=("gyro_z", "acc_x"))
    assert picked.channels == ["gyro_z", "acc_x"]
    assert np.allclose(picked.x.mean(axis=(0, 1)), [-30, 10], atol=0.5)


def test_wisdm_resampling_reproduces_the_raw_signal(tmp_path):
    written = write_wisdm(tmp_path, subjects=(1600,), codes=("A",))
    ds = har.load_wisdm(tmp_path, hop_s=1.0)
    assert len(ds) == 9  # (210 - 40) // 20 + 1 windows with a 1 s hop
    grid_start = max(written["acc", 1600, "A"].min(), written["gyro", 1600, "A"].min()) * 1e-9
    for w in range(len(ds)):
        t = grid_start + (w * 20 + np.arange(40)) / RATE
        expected = np.stack([signal("acc", t), signal("gyro", t)], axis=2).reshape(40, 6)
        np.testing.assert_allclose(ds.x[w], expected, atol=1e-2)


def test_wisdm_activities_filter_keeps_the_given_order(wisdm_root):
    ds = har.load_wisdm(wisdm_root, activities=("dribbling", "typing", "clapping"))
    assert ds.classes == ["dribbling", "typing"]  # clapping has no windows, so no class
    assert np.bincount(ds.y).tolist() == [15, 15]
    with pytest.raises(DataError, match="unknown WISDM activity 'dancing'"):
        har.load_wisdm(wisdm_root, activities=("dancing",))


def test_wisdm_gap_splits_a_recording(tmp_path):
    written = write_wisdm(tmp_path, subjects=(1600,), codes=("A",), spans=GAP_SPANS)
    ds = har.load_wisdm(tmp_path)
    assert len(ds) == 4  # 2 windows on each side of the 3 s gap; 6 if interpolated across it
    # every window matches the raw signal: none was interpolated across the gap
    acc, gyro = written["acc", 1600, "A"], written["gyro", 1600, "A"]
    second_start = max(acc[acc > acc.min() + 6e9].min(), gyro[gyro > gyro.min() + 6e9].min())
    starts = [max(acc.min(), gyro.min()) * 1e-9] * 2 + [second_start * 1e-9] * 2
    for w, start in enumerate(starts):
        t = start + (w % 2 * 40 + np.arange(40)) / RATE
        expected = np.stack([signal("acc", t), signal("gyro", t)], axis=2).reshape(40, 6)
        np.testing.assert_allclose(ds.x[w], expected, atol=1e-2)


def test_wisdm_files_directly_under_root(tmp_path):
    write_wisdm(tmp_path, flat=True)
    assert har.load_wisdm(tmp_path).x.shape == (45, 40, 6)


@pytest.mark.parametrize("bad", ["1600,A,notanumber,1.0,2.0,3.0;", "1600,A,123,1.0,2.0;",
                                 "1600,Z,123,1.0,2.0,3.0;"])
def test_wisdm_malformed_line_names_file_and_line(wisdm_root, bad):
    path = wisdm_root / "watch" / "accel" / "data_1601_accel_watch.txt"
    lines = path.read_text().splitlines()
    lines[4] = bad
    path.write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"data_1601_accel_watch\.txt: line 5"):
        har.load_wisdm(wisdm_root)


def test_wisdm_missing_gyro_file_is_an_error_unless_gyro_is_unused(wisdm_root):
    (wisdm_root / "watch" / "gyro" / "data_1601_gyro_watch.txt").unlink()
    with pytest.raises(DataError, match="subject 1601 has data_1601_accel_watch.txt but no "
                                        "data_1601_gyro_watch.txt"):
        har.load_wisdm(wisdm_root)
    acc_only = har.load_wisdm(wisdm_root, channels=("acc_x", "acc_y", "acc_z"))
    assert acc_only.x.shape[2] == 3 and len(set(acc_only.subjects.tolist())) == 3


def test_wisdm_empty_or_wrong_directory(tmp_path):
    with pytest.raises(DataError, match="no WISDM files data_\\*_accel_watch.txt"):
        har.load_wisdm(tmp_path)
    with pytest.raises(DataError, match="no such directory"):
        har.load_wisdm(tmp_path / "nope")
    with pytest.raises(DataError, match="unknown WISDM device"):
        har.load_wisdm(tmp_path, device="ring")
    with pytest.raises(DataError, match="channels must be distinct names"):
        har.load_wisdm(tmp_path, channels=("acc_x", "mag_x"))


def test_wisdm_recordings_shorter_than_a_window(tmp_path):
    write_wisdm(tmp_path, subjects=(1600,), codes=("A",),
                spans={"acc": [(0.0, 1.0)], "gyro": [(0.0, 1.0)]})
    with pytest.raises(DataError, match="no 2 s window fits"):
        har.load_wisdm(tmp_path)


# ---------------------------------------------------------------- NPZ


def test_npz_round_trip(tmp_path):
    ds = small_dataset()
    har.save_npz(ds, tmp_path / "d.npz")
    back = har.load_npz(tmp_path / "d.npz")
    assert np.array_equal(back.x, ds.x) and np.array_equal(back.y, ds.y)
    assert np.array_equal(back.subjects, ds.subjects)
    assert (back.classes, back.channels, back.rate_hz) == (ds.classes, ds.channels, 10.0)


def test_npz_optional_keys_get_default_names(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 3, 2)), y=np.array([0, 1, 1, 0]))
    ds = har.load_npz(tmp_path / "d.npz")
    assert ds.classes == ["class0", "class1"] and ds.channels == ["ch0", "ch1"]
    assert ds.subjects is None and ds.rate_hz is None


def test_npz_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        har.load_npz(tmp_path / "missing.npz")
    np.savez(tmp_path / "nox.npz", y=np.zeros(3))
    with pytest.raises(DataError, match="has no array 'x'"):
        har.load_npz(tmp_path / "nox.npz")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        har.load_npz(tmp_path / "bad.npz")
    np.savez(tmp_path / "flat.npz", x=np.zeros((4, 3)), y=np.zeros(4))
    with pytest.raises(DataError, match=r"flat.npz: x must be shaped \(windows, steps, channels\)"):
        har.load_npz(tmp_path / "flat.npz")


def test_real_basicmotions_files_load():
    if not (BASICMOTIONS / "train.npz").is_file():
        pytest.skip(f"BasicMotions data not found at {BASICMOTIONS} (shared/ is not checked out "
                    "next to this repository)")
    for name in ("train.npz", "test.npz"):
        ds = har.load(BASICMOTIONS / name)
        assert ds.x.shape == (40, 100, 6)
        assert len(ds.classes) == 4 and np.bincount(ds.y).tolist() == [10, 10, 10, 10]
        assert ds.channels[0] == "acc_x"


# ---------------------------------------------------------------- CSV

CSV_OK = """subject,window,label,acc_x,acc_y
7,w0,walk,1,2
7,w0,walk,3,4
7,w1,sit,5,6
7,w1,sit,7,8

9,w2,walk,9,10
9,w2,walk,11,12
"""


def write(tmp_path, text, name="d.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_long_layout_with_subject_column(tmp_path):
    ds = har.load_csv(write(tmp_path, CSV_OK))
    assert ds.x.shape == (3, 2, 2)
    assert ds.x[2].tolist() == [[9, 10], [11, 12]]
    assert ds.classes == ["sit", "walk"] and ds.y.tolist() == [1, 0, 1]  # classes sorted by name
    assert ds.subjects.tolist() == [7, 7, 9] and ds.channels == ["acc_x", "acc_y"]


@pytest.mark.parametrize("text, message", [
    (CSV_OK.replace("9,w2,walk,11,12\n", ""), "ragged windows"),
    (CSV_OK.replace("5,6", "5,oops"), "row 4: acc_y 'oops' is not a number"),
    (CSV_OK.replace("5,6", "5,"), "row 4: acc_y '' is not a number"),
    ("1,2,3\n4,5,6\n", "cannot read this layout; expected a header row"),
    (CSV_OK.replace("7,w1,sit,7,8", "7,w1,walk,7,8"), "row 5: label 'walk' differs"),
    (CSV_OK + "9,w0,walk,1,2\n9,w0,walk,1,2\n", "window 'w0' appears again"),
    (CSV_OK.replace("3,4", "3,4,5"), "row 3 has 6 cells"),
    (CSV_OK.replace("5,6", "nan,6"), "window 1 contains NaN"),
])
def test_csv_errors(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        har.load_csv(write(tmp_path, text))


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(x=np.where(np.arange(18)[:, None, None] == 4, np.nan, d["x"])),
     "window 4 contains NaN or Inf"),
    (lambda d: d["x"].__setitem__((2, 0, 0), np.inf), "window 2 contains NaN or Inf"),
    (lambda d: d["y"].__setitem__(3, 7), "unknown label 7 in window 3"),
    (lambda d: d.update(y=np.minimum(d["y"], 1)), "empty class 'c'"),
    (lambda d: d.update(channels=["u", "v", "w"]), "3 channel names for 2 channels"),
    (lambda d: d.update(y=d["y"][:-1]), "y has 17 labels for 18 windows"),
    (lambda d: d.update(subjects=np.arange(5)), "subjects has 5 entries"),
    (lambda d: d.update(classes=["a", "b", "a"]), "duplicate class name 'a'"),
    (lambda d: d.update(x=d["x"][0]), r"x must be shaped \(windows, steps, channels\)"),
    (lambda d: d.update(x=d["x"][:0], y=d["y"][:0]), "x has no data"),
    (lambda d: d.update(y=d["y"] + 0.5), "y must hold integers"),
])
def test_validation_errors(change, message):
    ds = small_dataset()
    fields = {"x": ds.x.copy(), "y": ds.y.copy(), "classes": ds.classes, "channels": ds.channels,
              "subjects": ds.subjects}
    change(fields)
    with pytest.raises(DataError, match=message):
        HarDataset(**fields)


def test_subset_may_lack_a_class():
    ds = small_dataset()
    part = ds.subset(ds.y == 0)
    assert part.classes == ["a", "b", "c"] and len(part) == 6 and part.partial
    assert len(ds.subset(slice(0, 4))) == 4 and len(ds.subset([0, 17])) == 2
    with pytest.raises(DataError, match="subset is empty"):
        ds.subset([])


def test_summary_mentions_counts_and_rate():
    text = small_dataset().summary()
    assert "18 windows x 5 steps x 2 channels (10 Hz" in text
    assert "a 6, b 6, c 6" in text and "subjects: 6" in text


# ---------------------------------------------------------------- splits


def test_subject_split_is_disjoint_and_covers_everything():
    ds = har.synthetic(n_subjects=10, windows_per_class=30)
    parts = ds.split(val=0.2, test=0.2, by="subject", seed=3)
    groups = [set(p.subjects.tolist()) for p in parts]
    assert all(not (a & b) for i, a in enumerate(groups) for b in groups[i + 1:])
    assert sum(len(p) for p in parts) == len(ds)
    assert [len(p) for p in parts] == [90, 30, 30]  # equal-size subjects: exact fractions
    other = ds.split(val=0.2, test=0.2, by="subject", seed=4)
    assert set(other[2].subjects.tolist()) != groups[2]


def test_subject_split_needs_enough_subjects():
    with pytest.raises(DataError, match="needs at least 3 subjects"):
        small_dataset(n_subjects=2).split(by="subject")
    train, val, test = small_dataset(n_subjects=2).split(val=0.5, test=0, by="subject")
    assert test is None and set(train.subjects.tolist()) != set(val.subjects.tolist())
    with pytest.raises(DataError, match="has no subject ids"):
        small_dataset(subjects=False).split(by="subject")


def test_random_split_is_stratified_and_seeded():
    ds = small_dataset(subjects=False, n_per_class=10)
    train, val, test = ds.split(val=0.2, test=0.3, seed=1)
    assert np.bincount(val.y).tolist() == [2, 2, 2] and np.bincount(test.y).tolist() == [3, 3, 3]
    rows = np.sort(np.concatenate([train.x[:, 0, 0], val.x[:, 0, 0], test.x[:, 0, 0]]))
    assert np.array_equal(rows, np.sort(ds.x[:, 0, 0]))  # every window once
    again = ds.split(val=0.2, test=0.3, seed=1)[2]
    other = ds.split(val=0.2, test=0.3, seed=2)[2]
    assert np.array_equal(again.x, test.x) and not np.array_equal(other.x, test.x)


def test_auto_split_uses_subjects_when_known():
    train, _, test = small_dataset().split(by="auto")
    assert not set(train.subjects.tolist()) & set(test.subjects.tolist())
    train, _, test = small_dataset(subjects=False).split(by="auto", test=0.5, val=0)
    assert np.bincount(test.y).tolist() == [3, 3, 3]


def test_split_argument_errors():
    with pytest.raises(DataError, match="split fractions"):
        small_dataset().split(val=0.5, test=0.5)
    with pytest.raises(DataError, match="unknown split 'time'"):
        small_dataset().split(by="time")
    assert small_dataset().split(val=0, test=0)[1:] == (None, None)


# ---------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_and_shaped():
    a, b = har.synthetic(seed=5), har.synthetic(seed=5)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, har.synthetic(seed=6).x)
    ds = har.synthetic(n_subjects=4, windows_per_class=8, steps=50, classes=("typing", "waving"))
    assert ds.x.shape == (4 * 2 * 2, 50, 6) and ds.classes == ["typing", "waving"]
    assert ds.channels == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    assert np.isfinite(ds.x).all() and sorted(set(ds.subjects.tolist())) == [1, 2, 3, 4]
    assert 8 < np.linalg.norm(ds.x[..., :3].mean(axis=1), axis=1).mean() < 11  # gravity
    with pytest.raises(DataError, match="synthetic classes"):
        har.synthetic(classes=("flying",))


def features(ds: HarDataset) -> np.ndarray:
    """Per-channel log standard deviation and dominant frequency."""
    x = ds.x - ds.x.mean(axis=1, keepdims=True)
    spectrum = np.abs(np.fft.rfft(x, axis=1))[:, 1:]
    dominant = (np.argmax(spectrum, axis=1) + 1) * ds.rate_hz / ds.x.shape[1]
    return np.concatenate([np.log(x.std(axis=1) + 1e-3), dominant], axis=1)


def test_synthetic_classes_are_separable_across_subjects():
    train, _, test = har.synthetic(seed=1).split(val=0, test=0.25, by="subject")
    f_train, f_test = features(train), features(test)
    mu, sigma = f_train.mean(axis=0), f_train.std(axis=0) + 1e-9
    centroids = np.stack([((f_train - mu) / sigma)[train.y == k].mean(axis=0)
                          for k in range(len(train.classes))])
    distance = np.linalg.norm(((f_test - mu) / sigma)[:, None] - centroids[None], axis=2)
    accuracy = (np.argmin(distance, axis=1) == test.y).mean()
    assert accuracy > 0.8


# ---------------------------------------------------------------- load()


def test_load_dispatches_on_the_source(tmp_path):
    assert har.load("synthetic", n_subjects=2, windows_per_class=2).x.shape == (10, 40, 6)
    har.save_npz(small_dataset(), tmp_path / "d.npz")
    assert len(har.load(tmp_path / "d.npz")) == 18
    assert len(har.load(str(write(tmp_path, CSV_OK)))) == 3
    write_wisdm(tmp_path / "wisdm", subjects=(1600,), codes=("A",))
    assert har.load(tmp_path / "wisdm", hop_s=1.0).x.shape == (9, 40, 6)


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        har.load(tmp_path / "missing.npz")
    with pytest.raises(DataError, match="cannot read .* expected 'synthetic'"):
        har.load(write(tmp_path, "hello", "notes.txt"))
    with pytest.raises(DataError, match="cannot read .* expected"):
        har.load(tmp_path)  # a directory without WISDM files
    with pytest.raises(DataError, match="options rate_hz do not apply"):
        har.load(write(tmp_path, CSV_OK), rate_hz=20)
