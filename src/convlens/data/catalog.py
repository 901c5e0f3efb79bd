"""The datasets convlens knows by name: their files, digests, mirrors and class names.

Everything here is data, looked up at call time (``KNOWN[name]``), so tests can swap in a
fake entry with ``monkeypatch.setitem(catalog.KNOWN, "fashion-mnist", replace(...))``.

Where the digests come from:
- Fashion-MNIST: the SHA-256 of each file's *decompressed* content and of the official
  ``.gz`` as served by the mirrors, from the project's ``shared/datasets/README.md`` (and
  the content digests recomputed here from the real files). Verifying the content rather
  than the gzip wrapper lets both the official ``.gz`` and Debian's recompressed ``.gz``
  (``apt-get install dataset-fashion-mnist``) pass.
- MNIST: only the SHA-256 of the official ``.gz`` files is published (the same four values
  appear in several independent public loaders, e.g. torchvision-style mirrors lists and
  rust/go/ruby MNIST readers; the sizes are LeCun's). No digest of the decompressed
  content was found, so an MNIST copy is verified only as the official ``.gz`` bytes; an
  unpacked or recompressed MNIST copy cannot be verified and must be loaded as
  ``idx:DIR`` (format checks only) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Label order 0-9 of Fashion-MNIST, as published by Zalando Research.
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

MNIST_CLASSES: tuple[str, ...] = tuple(str(digit) for digit in range(10))

#: The canonical IDX file names (without ``.gz``), in the order train images, train
#: labels, test images, test labels.
IDX_STEMS: tuple[str, str, str, str] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: The embedded 10% sample of Fashion-MNIST (built by ``scripts/build_sample.py``).
SAMPLE_DIR: Path = Path(__file__).resolve().parent / "sample" / "fashion-mnist"


@dataclass(frozen=True)
class KnownFile:
    """One of the four files of a known dataset and what its bytes must hash to."""

    stem: str  # e.g. "train-images-idx3-ubyte"; on disk as stem or stem + ".gz"
    gz_size: int  # bytes of the official .gz (checked while downloading)
    gz_sha256: str  # SHA-256 of the official .gz
    content_size: int | None = None  # bytes once decompressed; None: not published
    content_sha256: str | None = None  # SHA-256 once decompressed; None: not published

    @property
    def kind(self) -> str:
        return "images" if "-images-" in self.stem else "labels"


@dataclass(frozen=True)
class KnownDataset:
    """A dataset convlens can find, verify and download by name."""

    name: str  # the spec: "fashion-mnist"
    title: str  # for people: "Fashion-MNIST"
    class_names: tuple[str, ...]
    files: tuple[KnownFile, ...]  # in IDX_STEMS order
    mirrors: tuple[str, ...]  # base URLs ending in "/", tried in order
    system_dir: Path  # where Debian's package installs it
    subfolders: tuple[str, ...]  # accepted under a data folder: DIR/<sub>/<files>
    apt_package: str | None = None  # Debian package that installs system_dir


FASHION_MNIST = KnownDataset(
    name="fashion-mnist",
    title="Fashion-MNIST",
    class_names=FASHION_MNIST_CLASSES,
    files=(
        KnownFile(
            "train-images-idx3-ubyte",
            26421880,
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            47040016,
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        KnownFile(
            "train-labels-idx1-ubyte",
            29515,
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            60008,
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        KnownFile(
            "t10k-images-idx3-ubyte",
            4422102,
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            7840016,
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        KnownFile(
            "t10k-labels-idx1-ubyte",
            5148,
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            10008,
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    ),
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
    system_dir=Path("/usr/share/datasets/fashion-mnist"),
    subfolders=("fashion-mnist", "FashionMNIST/raw"),
    apt_package="dataset-fashion-mnist",
)

# MNIST: SHA-256 of the official .gz files only (see the module docstring).
MNIST = KnownDataset(
    name="mnist",
    title="MNIST",
    class_names=MNIST_CLASSES,
    files=(
        KnownFile(
            "train-images-idx3-ubyte",
            9912422,
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        KnownFile(
            "train-labels-idx1-ubyte",
            28881,
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ),
        KnownFile(
            "t10k-images-idx3-ubyte",
            1648877,
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ),
        KnownFile(
            "t10k-labels-idx1-ubyte",
            4542,
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    system_dir=Path("/usr/share/datasets/mnist"),
    subfolders=("mnist", "MNIST/raw"),
)

#: Every dataset known by name; the keys are the specs ``load_dataset`` accepts.
KNOWN: dict[str, KnownDataset] = {FASHION_MNIST.name: FASHION_MNIST, MNIST.name: MNIST}
