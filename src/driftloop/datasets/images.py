"""Labelled images as frames: Fashion-MNIST, an image folder, or a manifest CSV.

Every loader returns the canonical image frame the vision blueprint trains on:

* ``id``    -- ``img-<sha256 of the pixels>`` (folder, Fashion-MNIST) or the manifest's id;
* ``label`` -- the class, as text;
* ``pixels`` -- the image's uint8 pixels, row-major (H, W, C), as bytes;
* ``height``, ``width``, ``channels`` -- its shape (every row the same).

Raw pixels rather than PNG: a batch of rows becomes the model's [n, H, W, C]
array with one ``frombuffer`` (decoding 70,000 PNGs took ~25 s here), and the
frames still pass between pipeline steps as Parquet. Ids from pixel content make
the id-hash split a content split: an image lands in the same split whatever its
file is called, and the split fingerprints (sha256 over every cell, pixels
included) change exactly when the images do.

Normalisation, documented rather than refused: images of mixed modes are
converted to ``L`` when every one is greyscale (``L``, ``LA``, ``1``, ``I``, or a
palette of greys), else to ``RGB`` (alpha is dropped onto black); images of mixed
sizes are resized (bilinear) to the most common size. ``frame.attrs["source_stats"]``
counts what was converted, resized and dropped as a duplicate. An unreadable
file, an empty class folder or a manifest row without an image is a
``DatasetValidationError`` naming the file, class or row.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.datasets.errors import DatasetSourceError, DatasetValidationError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_MNIST_CLASSES = (
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
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_COLUMNS = ("id", "label", "pixels", "height", "width", "channels")
MANIFEST_COLUMNS = ("id", "image", "label")
# a decompression bomb is refused before its pixels are read
MAX_PIXELS = 4096 * 4096
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


# --- pixels <-> PNG ---------------------------------------------------------------------
def png_bytes(pixels: np.ndarray) -> bytes:
    """Lossless PNG of a uint8 [H, W] or [H, W, C] array (C = 1 is stored as greyscale)."""
    from PIL import Image

    array = np.asarray(pixels, dtype=np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def image_frame(ids: Sequence[str], labels: Sequence[str], pixels: Sequence[np.ndarray]):
    """The canonical frame of equally shaped uint8 images ([H, W] or [H, W, C])."""
    shapes = {np.shape(p) for p in pixels}
    if len(shapes) > 1:
        raise DatasetValidationError(f"images of mixed shapes {sorted(shapes)[:3]}")
    shape = next(iter(shapes)) if shapes else (0, 0)
    height, width = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    return pd.DataFrame(
        {
            "id": [str(i) for i in ids],
            "label": [str(label) for label in labels],
            "pixels": [np.ascontiguousarray(p, dtype=np.uint8).tobytes() for p in pixels],
            "height": np.full(len(ids), height, dtype=np.int32),
            "width": np.full(len(ids), width, dtype=np.int32),
            "channels": np.full(len(ids), channels, dtype=np.int32),
        }
    )


def frame_pixels(frame: pd.DataFrame, what: str = "frame") -> np.ndarray:
    """The uint8 [n, H, W, C] array of a canonical image frame's rows."""
    missing = [c for c in IMAGE_COLUMNS[2:] if c not in frame.columns]
    if missing:
        raise DatasetValidationError(
            f"{what} lacks image column(s) {', '.join(missing)}", {c: "missing" for c in missing}
        )
    shapes = frame[["height", "width", "channels"]].drop_duplicates()
    if len(shapes) > 1:
        raise DatasetValidationError(
            f"{what}: images of {len(shapes)} different shapes; every row must share one",
            {"pixels": "mixed shapes"},
        )
    if frame.empty:
        return np.zeros((0, 1, 1, 1), dtype=np.uint8)
    height, width, channels = (int(v) for v in shapes.iloc[0])
    flat = np.frombuffer(b"".join(frame["pixels"]), dtype=np.uint8)
    if flat.size != len(frame) * height * width * channels:
        raise DatasetValidationError(
            f"{what}: column 'pixels' holds {flat.size} bytes, not {len(frame)} rows of "
            f"{height}x{width}x{channels}",
            {"pixels": "wrong size"},
        )
    return flat.reshape(len(frame), height, width, channels)


def pixel_id(pixels: np.ndarray) -> str:
    """``img-`` + the sha256 of the pixels and their shape (20 hex digits)."""
    array = np.ascontiguousarray(pixels, dtype=np.uint8)
    if array.ndim == 2:  # [H, W] and [H, W, 1] are the same image
        array = array[:, :, np.newaxis]
    digest = hashlib.sha256(repr(array.shape).encode() + array.tobytes()).hexdigest()
    return f"img-{digest[:20]}"


def open_image(data: bytes, what: str):
    """A loaded PIL image from encoded bytes; ``DatasetValidationError`` naming ``what``."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise DatasetValidationError(
                f"{what}: {width}x{height} pixels is larger than {MAX_PIXELS} pixels"
            )
        image.load()
    except DatasetValidationError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DatasetValidationError(f"{what}: not a readable image ({exc})") from None
    return image


def target_mode(modes: Iterable[str]) -> str:
    """``L`` when every mode is greyscale, else ``RGB`` (see the module docstring)."""
    return "L" if all(mode in _GREY_MODES for mode in modes) else "RGB"


def conformed(image, mode: str, size: tuple[int, int]) -> np.ndarray:
    """``image`` converted to ``mode`` and resized (bilinear) to ``size`` (W, H), as uint8."""
    from PIL import Image

    if image.mode != mode:
        if image.mode in ("RGBA", "LA", "PA") or (
            image.mode == "P" and "transparency" in image.info
        ):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (0, 0, 0, 255))
            image = Image.alpha_composite(background, image)
        if image.mode in ("I", "I;16", "F"):
            image = image.point(lambda value: value / 256).convert("L")
        image = image.convert(mode)
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _normalised_frame(
    images: Sequence, labels: Sequence[str], names: Sequence[str], ids: Sequence[str] | None
) -> pd.DataFrame:
    """The canonical frame from loaded PIL images (one mode, one size; duplicates dropped)."""
    mode = target_mode(image.mode for image in images)
    sizes = Counter(image.size for image in images)
    # most common size; ties broken by the larger area, then the size itself (deterministic)
    size = max(sizes, key=lambda s: (sizes[s], s[0] * s[1], s))
    converted = sum(image.mode != mode for image in images)
    resized = sum(image.size != size for image in images)
    rows_id, rows_label, rows_pixels, seen = [], [], [], set()
    duplicates = 0
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        pixels = conformed(image, mode, size)
        row_id = ids[index] if ids is not None else pixel_id(pixels)
        if ids is None and row_id in seen:
            duplicates += 1  # the same pixels twice: one row (its first label)
            continue
        seen.add(row_id)
        rows_id.append(row_id)
        rows_label.append(str(label))
        rows_pixels.append(pixels)
    frame = image_frame(rows_id, rows_label, rows_pixels)
    frame.attrs["source_stats"] = {
        "images": len(images),
        "mode": mode,
        "size": f"{size[0]}x{size[1]}",
        "converted_mode": converted,
        "resized": resized,
        "duplicates_dropped": duplicates,
        "first_file": names[0] if names else None,
    }
    return frame


# --- Fashion-MNIST (Debian package dataset-fashion-mnist) -------------------------------
def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    zero, dtype_code, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DatasetValidationError(f"{path}: not an IDX file of unsigned bytes")
    shape = struct.unpack(f">{dims}I", data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist_arrays(
    part: str = "train", directory: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images [n, 28, 28], class names [n]) of the ``train`` or ``test`` part."""
    directory = Path(directory or FASHION_MNIST_DIR)
    image_file, label_file = FASHION_MNIST_FILES[part]
    paths = [directory / image_file, directory / label_file]
    missing = [str(p) for p in paths if not p.is_file() and not p.with_suffix("").is_file()]
    if missing:
        raise DatasetSourceError(
            f"Fashion-MNIST not found ({', '.join(missing)}): install the Debian package "
            "dataset-fashion-mnist (make install runs scripts/install-system-deps.sh)"
        )
    paths = [p if p.is_file() else p.with_suffix("") for p in paths]
    images, codes = _read_idx(paths[0]), _read_idx(paths[1])
    return images, np.asarray(FASHION_MNIST_CLASSES, dtype=object)[codes]


def load_fashion_mnist(
    directory: str | Path | None = None, limit: int | None = None
) -> pd.DataFrame:
    """Both parts (70,000 images) as one canonical frame; the pipeline splits by id hash.

    ``limit`` keeps that many rows by id order (ids are content hashes, so a fixed
    pseudo-random subset), before any PNG is written.
    """
    parts = [fashion_mnist_arrays(part, directory) for part in ("train", "test")]
    pixels = np.concatenate([images for images, _ in parts])
    labels = np.concatenate([names for _, names in parts])
    ids = np.array([pixel_id(image) for image in pixels], dtype=object)
    _, first = np.unique(ids, return_index=True)  # identical images: one row
    keep = np.sort(first)
    duplicates = len(ids) - len(keep)
    if limit is not None and limit < len(keep):
        keep = keep[np.argsort(ids[keep], kind="mergesort")[:limit]]
    frame = image_frame(ids[keep].tolist(), labels[keep].astype(str).tolist(), pixels[keep])
    frame.attrs["source_stats"] = {
        "images": int(len(ids)),
        "mode": "L",
        "size": "28x28",
        "duplicates_dropped": int(duplicates),
        "rows": int(len(frame)),
    }
    return frame


# --- an image folder: ROOT/CLASS/*.png|jpg|jpeg -----------------------------------------
def load_image_folder(root: str | Path) -> pd.DataFrame:
    """Every image under ``root/CLASS/`` labelled ``CLASS``; other files are ignored."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetSourceError(f"--data: no such image folder: {root}")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetValidationError(
            f"--data {root}: no class folders; lay images out as {root}/CLASS/*.png|jpg|jpeg"
        )
    images, labels, names = [], [], []
    for folder in classes:
        files = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DatasetValidationError(
                f"--data {root}: class {folder.name!r} has no .png/.jpg/.jpeg images",
                {"label": f"class {folder.name!r} empty"},
            )
        for path in files:
            images.append(open_image(path.read_bytes(), f"--data: image {path}"))
            labels.append(folder.name)
            names.append(str(path.relative_to(root)))
    return _normalised_frame(images, labels, names, None)


# --- a manifest CSV: id,image,label ------------------------------------------------------
def _fetch(url: str, what: str) -> bytes:
    import httpx

    try:
        response = httpx.get(url, timeout=30.0, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise DatasetSourceError(f"{what}: cannot fetch {url}: {exc}") from None
    return response.content


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def load_image_manifest(path_or_url: str | Path) -> pd.DataFrame:
    """Rows of a CSV ``id,image,label``: ``image`` is a path relative to the CSV or a URL.

    A URL (the manifest's own or an image's) is fetched only because it was given.
    """
    source = str(path_or_url)
    if _is_url(source):
        text = _fetch(source, "--data").decode("utf-8")
        base: str | Path = source.rsplit("/", 1)[0] + "/"
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    else:
        base = Path(source).resolve().parent
        table = pd.read_csv(source, dtype=str, keep_default_na=False)
    missing = [c for c in MANIFEST_COLUMNS if c not in table.columns]
    if missing:
        raise DatasetValidationError(
            f"--data {source}: manifest lacks column(s) {', '.join(missing)} "
            f"(columns: {', '.join(table.columns)}); expected id,image,label",
            {c: "missing" for c in missing},
        )
    for column in MANIFEST_COLUMNS:
        blank = table[column].str.strip() == ""
        if blank.any():
            raise DatasetValidationError(
                f"--data {source}: column {column!r} is empty in {int(blank.sum())} row(s), "
                f"first at row {int(blank.idxmax()) + 2}",
                {column: f"{int(blank.sum())} empty"},
            )
    duplicated = table["id"].duplicated()
    if duplicated.any():
        raise DatasetValidationError(
            f"--data {source}: column 'id' has {int(duplicated.sum())} duplicate id(s), "
            f"e.g. {table['id'][duplicated].iloc[0]!r}",
            {"id": f"{int(duplicated.sum())} duplicates"},
        )
    images = []
    for row, reference in enumerate(table["image"], start=2):
        what = f"--data {source}: row {row} image {reference!r}"
        if _is_url(reference):
            data = _fetch(reference, what)
        elif isinstance(base, str):  # a manifest fetched by URL: relative to that URL
            data = _fetch(base + reference, what)
        else:
            file = base / reference
            if not file.is_file():
                raise DatasetValidationError(f"{what}: no such file {file}", {"image": "missing"})
            data = file.read_bytes()
        images.append(open_image(data, what))
    return _normalised_frame(images, table["label"].tolist(), table["image"].tolist(), table["id"])


def load_images(source: str | Path | None, limit: int | None = None) -> pd.DataFrame:
    """Fashion-MNIST (``source`` None), an image folder or a manifest CSV (path or URL).

    ``limit`` keeps that many rows by id order (a fixed pseudo-random subset).
    """
    if source is None:
        return load_fashion_mnist(limit=limit)
    text = str(source)
    if _is_url(text) or text.lower().endswith(".csv"):
        frame = load_image_manifest(text)
    elif Path(text).is_dir():
        frame = load_image_folder(text)
    else:
        raise DatasetSourceError(
            f"--data: {text} is neither an image folder (ROOT/CLASS/*.png) nor a manifest .csv"
        )
    if limit is not None and limit < len(frame):
        stats = frame.attrs.get("source_stats", {})
        frame = frame.sort_values("id", kind="mergesort").head(limit).reset_index(drop=True)
        frame.attrs["source_stats"] = stats | {"rows": int(len(frame))}
    return frame
