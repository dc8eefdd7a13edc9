import gzip
from pathlib import Path

import numpy as np
import pytest

from tasks.mnist.data import DataUnavailableError, load_idx_directory, load_mnist
from tasks.mnist.idx import IdxFormatError, read_idx, write_idx


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip_plain_and_gzipped(tmp_path: Path, name: str) -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28)).astype(np.uint8)
    write_idx(tmp_path / name, images)
    np.testing.assert_array_equal(read_idx(tmp_path / name), images)


def test_truncated_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "train-labels-idx1-ubyte"
    write_idx(path, np.arange(10, dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(IdxFormatError, match=r"train-labels-idx1-ubyte: expected 10 data bytes"):
        read_idx(path)


def test_not_an_idx_file(tmp_path: Path) -> None:
    path = tmp_path / "junk"
    path.write_bytes(b"PK\x03\x04 this is a zip")
    with pytest.raises(IdxFormatError, match="not an IDX file"):
        read_idx(path)


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 20)[:-8])
    with pytest.raises(IdxFormatError, match=r"t10k-images-idx3-ubyte\.gz"):
        read_idx(path)


def test_directory_with_a_missing_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="train-images-idx3-ubyte"):
        load_idx_directory(tmp_path)


def test_no_directory_and_no_hub_fails_fast_with_instructions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FEDAVG_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    load_mnist.cache_clear()
    with pytest.raises(DataUnavailableError, match="data-dir"):
        load_mnist("")


def test_environment_variable_points_at_the_data(
    synthetic_mnist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDAVG_DATA_DIR", str(synthetic_mnist.parent))  # finds mnist/ below
    load_mnist.cache_clear()
    assert len(load_mnist("").train_labels) == 600
    load_mnist.cache_clear()


def test_real_mnist_label_counts(real_mnist: Path) -> None:
    arrays = load_idx_directory(real_mnist)
    assert arrays.train_images.shape == (60000, 28, 28)
    assert arrays.test_images.shape == (10000, 28, 28)
    assert np.bincount(arrays.train_labels).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(arrays.test_labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert arrays.train_images.mean() == pytest.approx(33.318, abs=1e-3)
