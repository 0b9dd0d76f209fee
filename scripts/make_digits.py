"""Build src/pycvnn/data/digits.npz from scikit-learn's copy of the UCI digits. Run once.

Source: the UCI "Optical Recognition of Handwritten Digits" data set (Alpaydin & Kaynak, 1998),
test part, 1,797 8x8 images with pixel counts 0..16, as scikit-learn distributes it in
sklearn/datasets/data/digits.csv.gz (64 pixel columns, then the label). Needs scikit-learn
only to locate that file.

    python scripts/make_digits.py
"""

import os
import pathlib

import numpy as np
import sklearn

SRC = pathlib.Path(sklearn.__file__).parent / "datasets" / "data" / "digits.csv.gz"
OUT = pathlib.Path(__file__).resolve().parents[1] / "src" / "pycvnn" / "data" / "digits.npz"


def main():
    table = np.loadtxt(SRC, delimiter=",", dtype=np.int64)
    images, labels = table[:, :64].astype(np.uint8), table[:, 64].astype(np.uint8)
    assert images.shape == (1797, 64) and images.max() == 16 and set(labels) == set(range(10))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    source = f"UCI optdigits (test part) via scikit-learn {sklearn.__version__} digits.csv.gz"
    np.savez_compressed(OUT, images=images, labels=labels, source=np.array(source))
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes): {images.shape[0]} images; {source}")


if __name__ == "__main__":
    main()
