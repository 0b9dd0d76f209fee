"""pycvnn.datasets: MNIST-format IDX files (raw and gzip) round trip and are checked against
their headers; class folders of PNG/JPEG images load resized, with clear errors for files that
do not decode; the 2-D toy generators are seeded and draw what the playground draws; and
`pycvnn train --data idx:DIR | folder:DIR` trains on them."""

import gzip
import re
import struct
import sys

import numpy as np
import pytest
from PIL import Image
from test_cli_args import assert_usage_error, run_bad

import pycvnn
from pycvnn import cli, datasets
from pycvnn.playground import data as playground_data

ACCURACY_LINE = re.compile(r"test accuracy: ([01]\.\d{4})")


# ---- IDX files ----------------------------------------------------------------------------------


def write_idx(path, magic, dims, payload, compress=False):
    """An IDX file: the big-endian magic number and dimensions, then the bytes."""
    raw = struct.pack(f">I{len(dims)}I", magic, *dims) + bytes(payload)
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(raw)
    return path


def write_mnist(folder, pixels, labels, part="train", compress=False):
    """pixels (N, rows, cols) uint8 and labels (N,) under MNIST's file names."""
    suffix = ".gz" if compress else ""
    images = write_idx(
        folder / f"{part}-images-idx3-ubyte{suffix}",
        0x803,
        pixels.shape,
        pixels.tobytes(),
        compress,
    )
    labels = write_idx(
        folder / f"{part}-labels-idx1-ubyte{suffix}",
        0x801,
        labels.shape,
        labels.tobytes(),
        compress,
    )
    return images, labels


@pytest.fixture
def small():
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    pixels[0, 0, 0], pixels[0, 0, 1] = 0, 255
    return pixels, rng.integers(0, 10, 7).astype(np.uint8)


@pytest.mark.parametrize("gz_images", [False, True], ids=["raw-images", "gz-images"])
@pytest.mark.parametrize("gz_labels", [False, True], ids=["raw-labels", "gz-labels"])
def test_idx_round_trips(tmp_path, small, gz_images, gz_labels):
    pixels, labels = small
    images_path = write_idx(tmp_path / "i", 0x803, pixels.shape, pixels.tobytes(), gz_images)
    labels_path = write_idx(tmp_path / "l", 0x801, labels.shape, labels.tobytes(), gz_labels)
    X, y = datasets.load_idx(str(images_path), labels_path)
    assert X.dtype == np.float32 and X.shape == (7, 15)
    assert y.dtype == np.int64 and y.shape == (7,)
    np.testing.assert_array_equal(X, pixels.reshape(7, 15).astype(np.float32) / np.float32(255))
    assert X[0, 0] == 0.0 and X[0, 1] == 1.0
    np.testing.assert_array_equal(y, labels)


def test_idx_compression_is_told_by_content_not_name(tmp_path, small):
    pixels, labels = small
    images = write_idx(tmp_path / "i.gz", 0x803, pixels.shape, pixels.tobytes(), compress=False)
    labels_path = write_idx(tmp_path / "l.raw", 0x801, labels.shape, labels.tobytes(), True)
    X, y = datasets.load_idx(images, labels_path)
    np.testing.assert_array_equal(X * 255, pixels.reshape(7, 15))
    np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize(
    "magic,found",
    [
        (0x801, "found 0x00000801 (unsigned byte data, 1 dimension(s))"),
        (0x903, "found 0x00000903 (signed byte data, 3 dimension(s))"),
        (0x89504E47, "found 0x89504e47 (not an IDX header)"),
    ],
)
def test_wrong_images_magic_says_what_was_found(tmp_path, small, magic, found):
    pixels, labels = small
    images = write_idx(tmp_path / "i", magic, pixels.shape, pixels.tobytes())
    labels_path = write_idx(tmp_path / "l", 0x801, labels.shape, labels.tobytes())
    with pytest.raises(ValueError, match="0x00000803") as info:
        datasets.load_idx(images, labels_path)
    assert str(images) in str(info.value) and found in str(info.value)


def test_swapped_files_are_refused_by_their_magic(tmp_path, small):
    pixels, labels = small
    images, labels_path = write_mnist(tmp_path, pixels, labels)
    with pytest.raises(ValueError, match="IDX images file.*found 0x00000801"):
        datasets.load_idx(labels_path, images)
    with pytest.raises(ValueError, match="IDX labels file.*found 0x00000803"):
        datasets.load_idx(images, images)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("which", ["images", "labels"])
def test_a_truncated_file_names_the_file_and_the_sizes(tmp_path, small, compress, which):
    pixels, labels = small
    images, labels_path = write_mnist(tmp_path, pixels, labels, compress=compress)
    if which == "images":
        path, expected = write_idx(images, 0x803, (7, 5, 3), pixels.tobytes()[:-4], compress), 121
    else:
        path, expected = write_idx(labels_path, 0x801, (7,), labels.tobytes()[:-4], compress), 15
    with pytest.raises(ValueError) as info:
        datasets.load_idx(images, labels_path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert f"expected {expected}" in message and f"got {expected - 4} (truncated)" in message


def test_a_cut_header_and_an_empty_file_are_value_errors(tmp_path, small):
    pixels, labels = small
    images, labels_path = write_mnist(tmp_path, pixels, labels)
    images.write_bytes(images.read_bytes()[:10])
    with pytest.raises(ValueError, match="expected 16 header bytes, got 10"):
        datasets.load_idx(images, labels_path)
    images.write_bytes(b"")
    with pytest.raises(ValueError, match="found a file of 0 byte"):
        datasets.load_idx(images, labels_path)


def test_trailing_bytes_are_a_value_error(tmp_path, small):
    pixels, labels = small
    images, labels_path = write_mnist(tmp_path, pixels, labels)
    images.write_bytes(images.read_bytes() + b"\0")
    with pytest.raises(ValueError, match=f"expected {16 + 7 * 15} bytes.*got more than"):
        datasets.load_idx(images, labels_path)


def test_a_damaged_gzip_stream_is_a_value_error_naming_the_file(tmp_path, small):
    pixels, labels = small
    images, labels_path = write_mnist(tmp_path, pixels, labels, compress=True)
    raw = bytearray(images.read_bytes())
    raw[-6] ^= 0xFF  # the stored length no longer matches: gzip refuses the stream
    images.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=re.escape(str(images))):
        datasets.load_idx(images, labels_path)


def test_mismatched_counts_name_both_files(tmp_path, small):
    pixels, labels = small
    images, _ = write_mnist(tmp_path, pixels, labels)
    fewer = write_idx(tmp_path / "six", 0x801, (6,), labels[:6].tobytes())
    with pytest.raises(ValueError, match="one label per image, 7 .* got 6") as info:
        datasets.load_idx(images, fewer)
    assert str(images) in str(info.value) and str(fewer) in str(info.value)


def test_a_header_claiming_huge_sizes_allocates_nothing(tmp_path):
    # 4e9 images of 60000 x 60000 pixels: reading them up front would be a MemoryError.
    n, side = 4_000_000_000, 60_000
    images = write_idx(tmp_path / "i", 0x803, (n, side, side), b"\1" * 64)
    labels = write_idx(tmp_path / "l", 0x801, (n,), b"\1" * 64)
    with pytest.raises(ValueError, match="(truncated)") as info:
        datasets.load_idx(images, labels)
    assert str(labels) in str(info.value) and f"{8 + n:,}" in str(info.value)


def test_zero_dimensions_are_a_value_error(tmp_path):
    images = write_idx(tmp_path / "i", 0x803, (0, 5, 3), b"")
    labels = write_idx(tmp_path / "l", 0x801, (0,), b"")
    with pytest.raises(ValueError, match=r"non-zero dimensions, got \(0, 5, 3\)"):
        datasets.load_idx(images, labels)


def test_missing_files_are_file_not_found_naming_them(tmp_path, small):
    pixels, labels = small
    images, labels_path = write_mnist(tmp_path, pixels, labels)
    for args, missing in [
        ((tmp_path / "nope", labels_path), tmp_path / "nope"),
        ((images, tmp_path / "gone.gz"), tmp_path / "gone.gz"),
    ]:
        with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
            datasets.load_idx(*args)


def test_paths_of_the_wrong_type_are_type_errors(tmp_path):
    with pytest.raises(TypeError, match="images: expected a file path"):
        datasets.load_idx(3, tmp_path / "l")
    with pytest.raises(TypeError, match="labels: expected a file path"):
        datasets.load_idx(tmp_path / "i", None)


# ---- image folders ------------------------------------------------------------------------------

RGB = (200, 100, 50)


def solid(mode, size, colour):
    return Image.new(mode, size, colour)


@pytest.fixture
def folder(tmp_path):
    """Two classes made in reverse order, PNG and JPEG, RGB and grayscale, odd sizes, and the
    files a loader must skip."""
    root = tmp_path / "images"
    for name in ("dog", "cat"):
        (root / name).mkdir(parents=True)
    solid("RGB", (7, 5), RGB).save(root / "dog" / "a.png")
    solid("L", (3, 9), 30).save(root / "dog" / "b.PNG")
    solid("RGB", (11, 6), RGB).save(root / "cat" / "c.jpg", quality=100)
    solid("L", (5, 5), 240).save(root / "cat" / "d.jpeg", quality=100)
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "cat" / ".hidden.png").write_text("hidden: skipped although it does not decode")
    (root / ".cache").mkdir()
    (root / ".cache" / "x.png").write_text("a hidden folder is no class")
    (root / "README.txt").write_text("files next to the class folders are skipped")
    return root


def gray(colour):
    return np.asarray(solid("RGB", (1, 1), colour).convert("L"), dtype=np.float32)[0, 0] / 255


def test_image_folder_loads_sorted_classes_resized(folder):
    X, y, classes = datasets.load_image_folder(folder, (4, 3))
    assert classes == ["cat", "dog"]
    assert X.dtype == np.float32 and X.shape == (4, 12)
    assert y.dtype == np.int64 and y.tolist() == [0, 0, 1, 1]
    expected = [gray(RGB), 240 / 255, gray(RGB), 30 / 255]  # c.jpg, d.jpeg, a.png, b.PNG
    np.testing.assert_allclose(X, np.repeat(np.float32(expected)[:, None], 12, 1), atol=3 / 255)
    np.testing.assert_array_equal(X[2:], np.float32([[gray(RGB)] * 12, [30 / 255] * 12]))


def test_image_folder_in_rgb_keeps_three_channels(folder):
    X, y, _ = datasets.load_image_folder(folder, 2, grayscale=False)
    assert X.shape == (4, 2 * 2 * 3) and 0 <= X.min() and X.max() <= 1
    np.testing.assert_array_equal(X[2], np.tile(np.float32(RGB) / 255, 4))  # a.png, lossless
    np.testing.assert_array_equal(X[3], np.full(12, np.float32(30) / 255))  # gray b.PNG


def test_image_rows_are_height_then_width_then_channel(tmp_path):
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10  # height 2, width 3
    (tmp_path / "only").mkdir()
    Image.fromarray(pixels, "RGB").save(tmp_path / "only" / "p.png")
    X, y, classes = datasets.load_image_folder(tmp_path, (3, 2), grayscale=False)
    np.testing.assert_array_equal(X[0], pixels.reshape(-1) / np.float32(255))
    assert y.tolist() == [0] and classes == ["only"]


@pytest.mark.parametrize("kind", ["truncated png", "truncated jpeg", "text as png"])
def test_a_file_that_does_not_decode_is_a_value_error_naming_it(folder, kind):
    bad = folder / "dog" / "broken.png"
    if kind == "text as png":
        bad.write_text("this is not a picture")
    else:
        source = folder / "dog" / "a.png" if kind == "truncated png" else folder / "cat" / "c.jpg"
        raw = source.read_bytes()
        bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        datasets.load_image_folder(folder, 4)


def test_empty_roots_and_class_folders_are_value_errors_naming_them(tmp_path, folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no class folders here")
    with pytest.raises(ValueError, match=f"class folders in {re.escape(repr(str(empty)))}"):
        datasets.load_image_folder(empty, 4)
    (folder / "bird").mkdir()
    (folder / "bird" / "readme.txt").write_text("no images")
    with pytest.raises(ValueError, match=re.escape(repr(str(folder / "bird")))):
        datasets.load_image_folder(folder, 4)


def test_a_missing_root_or_a_file_as_root(tmp_path, folder):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope"))):
        datasets.load_image_folder(tmp_path / "nope", 4)
    with pytest.raises(ValueError, match="got the file"):
        datasets.load_image_folder(folder / "README.txt", 4)


@pytest.mark.parametrize("size", [0, -1, 4097, 2.5, True, "4", (3,), (3, 0), (3, 4, 5), None])
def test_bad_sizes_are_value_errors(folder, size):
    with pytest.raises(ValueError, match="size: expected an int from 1 to 4096"):
        datasets.load_image_folder(folder, size)


def test_grayscale_must_be_a_bool(folder):
    with pytest.raises(TypeError, match="grayscale: expected True or False"):
        datasets.load_image_folder(folder, 4, grayscale="no")


def test_without_pillow_the_error_names_the_extra(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'pycvnn[images]'")):
        datasets.load_image_folder(folder, 4)


# ---- toy generators -----------------------------------------------------------------------------

GENERATORS = {
    "circle": datasets.make_circles,
    "xor": datasets.make_xor,
    "gaussians": datasets.make_gaussians,
    "spiral": datasets.make_spiral,
}
EXACTLY_BALANCED = ("circle", "gaussians", "spiral")


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("n", [1, 7, 200])
def test_generators_give_float32_points_and_int64_labels(name, n):
    X, y = GENERATORS[name](n, seed=0)
    assert X.dtype == np.float32 and X.shape == (n, 2) and X.flags.c_contiguous
    assert y.dtype == np.int64 and y.shape == (n,)
    assert set(y.tolist()) <= {0, 1} and np.isfinite(X).all()
    assert np.abs(X).max() < 8
    if name in EXACTLY_BALANCED:
        assert int(y.sum()) == n // 2


def test_defaults_are_200_points():
    for make in GENERATORS.values():
        assert make()[0].shape == (200, 2)


def test_xor_is_about_balanced_and_right_by_quadrant():
    X, y = datasets.make_xor(4000, seed=1)
    assert abs(y.mean() - 0.5) < 0.05
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] >= 0).astype(np.int64))


def test_circles_put_class_one_inside():
    X, y = datasets.make_circles(400, seed=2)
    radius = np.hypot(X[:, 0], X[:, 1])
    assert radius[y == 1].max() <= 2.5 < 3.5 <= radius[y == 0].min()


@pytest.mark.parametrize("name", GENERATORS)
def test_the_same_seed_gives_the_same_data(name):
    make = GENERATORS[name]
    a, b, c = make(150, 0.2, seed=5), make(150, 0.2, seed=5), make(150, 0.2, seed=6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(make(150, 0.2)[0], make(150, 0.2)[0])  # seed None: fresh draws


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_generators_draw_what_the_playground_draws(name, noise):
    X, y = GENERATORS[name](120, noise, seed=9)
    part = playground_data.generate(name, 120, noise, 0.7, 9)
    points = np.concatenate([part.train_points, part.test_points]).astype(np.float32)
    targets = np.concatenate([part.train_targets, part.test_targets]).astype(np.int64)
    mine, theirs = np.lexsort(X.T), np.lexsort(points.T)
    np.testing.assert_array_equal(X[mine], points[theirs])
    np.testing.assert_array_equal(y[mine], targets[theirs])


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"n": 0}, ValueError, "n: expected an int >= 1, got 0"),
        ({"n": 2.5}, TypeError, "n: expected an int"),
        ({"n": True}, TypeError, "n: expected an int"),
        ({"noise": -0.1}, ValueError, "noise: expected a number >= 0"),
        ({"noise": float("nan")}, ValueError, "noise: expected a finite number"),
        ({"noise": "low"}, TypeError, "noise: expected a real number"),
        ({"seed": -1}, ValueError, "seed: expected an int >= 0"),
        ({"seed": "a"}, TypeError, "seed: expected an int"),
    ],
)
def test_generators_refuse_bad_arguments(kwargs, error, pattern):
    for make in GENERATORS.values():
        with pytest.raises(error, match=pattern):
            make(**kwargs)


def test_generators_take_numpy_scalars():
    X, y = datasets.make_spiral(np.int64(10), np.float64(0.1), seed=np.uint8(3))
    np.testing.assert_array_equal(X, datasets.make_spiral(10, 0.1, seed=3)[0])


# ---- pycvnn train --data ------------------------------------------------------------------------


def stripes(n, rows=6, cols=5, classes=3, seed=0):
    """n images where class k lights row k: noisy but separable, so a run that keeps images
    and labels together reaches a high accuracy and one that mixes them up does not."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    pixels = rng.integers(0, 60, (n, rows, cols))
    pixels[np.arange(n), labels] += 180
    return pixels.astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture
def keep_backend():
    with pycvnn.using_backend(pycvnn.get_backend()):  # the CLI sets the backend process-wide
        yield


def train(capsys, *flags):
    argv = ["train", "--quiet", "--epochs", "30", "--hidden", "16", "--lr", "0.01", *flags]
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "Traceback" not in err
    match = ACCURACY_LINE.fullmatch(out.strip().splitlines()[-1])
    assert match, out
    return float(match.group(1)), err


def test_train_on_idx_files(capsys, tmp_path, keep_backend):
    write_mnist(tmp_path, *stripes(150), compress=True)
    model = tmp_path / "m.npz"
    accuracy, err = train(capsys, "--data", f"idx:{tmp_path}", "--save", str(model))
    assert accuracy >= 0.9
    assert f"on idx:{tmp_path} (108 train / 12 validation / 30 test)" in err
    assert "t10k" not in err
    shapes = [w.shape for w in pycvnn.load(model).get_weights()]
    assert shapes == [(16, 30), (16,), (3, 16), (3,)]  # 6 x 5 pixels in, 3 classes out


def test_t10k_files_are_the_test_set_and_the_run_says_so(capsys, tmp_path, keep_backend):
    write_mnist(tmp_path, *stripes(100))
    write_mnist(tmp_path, *stripes(40, seed=1), part="t10k", compress=True)
    accuracy, err = train(capsys, "--dataset", f"idx:{tmp_path}", "--test-fraction", "0.5")
    assert accuracy >= 0.9
    assert "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz" in err
    assert "--test-fraction does not apply" in err
    assert "(90 train / 10 validation / 40 test)" in err


def test_train_on_an_image_folder(capsys, tmp_path, keep_backend):
    rng = np.random.default_rng(0)
    for name, level in (("dark", 40), ("light", 210)):
        (tmp_path / name).mkdir()
        for i in range(24):
            size = (5 + i % 4, 4 + i % 3)  # odd sizes, all resized
            pixels = np.clip(level + rng.integers(-30, 30, (*size[::-1], 3)), 0, 255)
            kind = "png" if i % 2 else "jpg"
            Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / name / f"{i}.{kind}")
    for flags, inputs in ((["--image-size", "5x4"], 20), (["--image-size", "3", "--rgb"], 27)):
        model = tmp_path / "m.npz"
        accuracy, err = train(capsys, "--data", f"folder:{tmp_path}", "--save", str(model), *flags)
        assert accuracy >= 0.9
        assert f"on folder:{tmp_path} (34 train / 4 validation / 10 test)" in err
        assert pycvnn.load(model).get_weights()[0].shape == (16, inputs)


@pytest.fixture
def no_training(monkeypatch):
    """Any training fails the test: the checks must stop the command first."""

    def refuse(*args, **kwargs):
        raise AssertionError("the command went on to train")

    monkeypatch.setattr(pycvnn.Sequential, "fit", refuse)


BAD_DATA = [
    (["--data", "mnist"], "--data", "expected digits, idx:DIR or folder:DIR, got 'mnist'"),
    (["--data", "csv:{tmp}"], "--data", "expected digits, idx:DIR or folder:DIR"),
    (["--data", "idx:"], "--data", "expected idx:DIR with a folder, got 'idx:'"),
    (["--data", "folder:{tmp}/nope"], "--data", "the folder '{tmp}/nope' does not exist"),
    (["--data", "idx:{tmp}/file"], "--data", "the folder '{tmp}/file' is not a folder"),
    (["--dataset", "cifar"], "--dataset", "got 'cifar'"),
    (["--test-fraction", "0"], "--test-fraction", "between 0 and 1 (both excluded), got '0'"),
    (["--test-fraction", "1"], "--test-fraction", "got '1'"),
    (["--test-fraction", "-0.2"], "--test-fraction", "got '-0.2'"),
    (["--test-fraction", "nan"], "--test-fraction", "got 'nan'"),
    (["--test-fraction", "half"], "--test-fraction", "got 'half'"),
    (["--validation-fraction", "1.5"], "--validation-fraction", "got '1.5'"),
    (["--validation-fraction", "0"], "--validation-fraction", "got '0'"),
    (["--image-size", "0"], "--image-size", "from 1 to 4096, got '0'"),
    (["--image-size", "3x"], "--image-size", "got '3x'"),
    (["--image-size", "3x4x5"], "--image-size", "got '3x4x5'"),
    (["--image-size", "big"], "--image-size", "got 'big'"),
    # Fractions that leave a part of the five rows in {tmp}/five empty.
    (["--data", "idx:{tmp}/five", "--test-fraction", "0.05"], "--test-fraction", "no test rows"),
    (["--data", "idx:{tmp}/five", "--test-fraction", "0.95"], "--test-fraction", "no training"),
    (
        ["--data", "idx:{tmp}/five", "--validation-fraction", "0.1"],
        "--validation-fraction",
        "0.1 of the 4 training rows leaves no validation rows",
    ),
    (
        ["--data", "idx:{tmp}/five", "--validation-fraction", "0.9"],
        "--validation-fraction",
        "leaves no rows to train on",
    ),
]


@pytest.mark.parametrize("flags,flag,fragment", BAD_DATA, ids=[" ".join(c[0]) for c in BAD_DATA])
def test_bad_data_values_exit_2_before_training(
    capsys, tmp_path, no_training, flags, flag, fragment
):
    (tmp_path / "file").write_text("")
    (tmp_path / "five").mkdir()
    write_mnist(tmp_path / "five", *stripes(5))
    err = run_bad(capsys, ["train", *(f.replace("{tmp}", str(tmp_path)) for f in flags)])
    assert_usage_error(err, "train", flag, fragment.replace("{tmp}", str(tmp_path)))


def test_data_that_does_not_load_is_one_line_naming_the_flag(capsys, tmp_path, no_training):
    err = run_bad(capsys, ["train", "--data", f"idx:{tmp_path}"])
    assert_usage_error(err, "train", "--data", "expected MNIST's train-images-idx3-ubyte")
    images, _ = write_mnist(tmp_path, *stripes(20))
    images.write_bytes(images.read_bytes()[:-7])
    err = run_bad(capsys, ["train", "--data", f"idx:{tmp_path}"])
    assert_usage_error(err, "train", "--data", f"{images}: expected 616 bytes")
    err = run_bad(capsys, ["train", "--data", f"folder:{tmp_path}"])
    assert_usage_error(err, "train", "--data", "expected class folders in")


def test_the_model_size_bound_applies_to_loaded_data(capsys, tmp_path, no_training):
    write_mnist(tmp_path, *stripes(20))
    err = run_bad(capsys, ["train", "--data", f"idx:{tmp_path}", "--hidden", "100000,1001"])
    assert_usage_error(err, "train", "--hidden", f"parameters on idx:{tmp_path}; the limit is")


def test_folder_data_without_pillow_names_the_extra(capsys, tmp_path, no_training, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    assert cli.main(["train", "--data", f"folder:{tmp_path}"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "pip install 'pycvnn[images]'" in err


def test_help_describes_the_data_flags(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--data", "--dataset", "idx:DIR", "folder:DIR", "--test-fraction", "t10k"):
        assert text in out, text
    assert "--validation-fraction" in out and "--image-size" in out and "--rgb" in out
