"""Image datasets as canonical frames: folders, manifests (paths and 127.0.0.1 URLs),
Fashion-MNIST from the Debian package, and the errors a user can act on."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from driftloop.datasets.errors import DatasetSourceError, DatasetValidationError
from driftloop.datasets.fingerprint import frame_fingerprint
from driftloop.datasets.images import (
    FASHION_MNIST_DIR,
    frame_pixels,
    load_fashion_mnist,
    load_image_folder,
    load_image_manifest,
    load_images,
    pixel_id,
)

SHAPES = ("circle", "square", "cross")


def shape_image(label: str, rng: np.random.Generator, size: int = 16) -> Image.Image:
    """A light shape on a dark background at a random place and size."""
    image = Image.new("L", (size, size), int(rng.integers(0, 60)))
    draw = ImageDraw.Draw(image)
    radius = int(rng.integers(size // 4, size // 2 - 1))
    cx, cy = (int(v) for v in rng.integers(radius, size - radius, 2))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    fill = int(rng.integers(180, 256))
    if label == "circle":
        draw.ellipse(box, fill=fill)
    elif label == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.line((box[0], cy, box[2], cy), fill=fill, width=2)
        draw.line((cx, box[1], cx, box[3]), fill=fill, width=2)
    return image


def write_shapes_folder(root: Path, per_class: int = 30, size: int = 16, seed: int = 0) -> Path:
    """ROOT/{circle,square,cross}/*.png: a tiny image-folder dataset."""
    rng = np.random.default_rng(seed)
    for label in SHAPES:
        (root / label).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            shape_image(label, rng, size).save(root / label / f"{label}-{index:03d}.png")
    return root


def test_folder_becomes_a_canonical_frame_with_content_ids(tmp_path):
    root = write_shapes_folder(tmp_path / "shapes", per_class=5)
    frame = load_image_folder(root)
    assert list(frame.columns) == ["id", "label", "pixels", "height", "width", "channels"]
    assert frame["label"].value_counts().to_dict() == {"circle": 5, "square": 5, "cross": 5}
    pixels = frame_pixels(frame)
    assert pixels.shape == (15, 16, 16, 1)
    first = np.asarray(Image.open(root / "circle" / "circle-000.png"))
    row = frame[frame["id"] == pixel_id(first[..., np.newaxis])]
    assert len(row) == 1 and row["label"].item() == "circle"
    # the same images under other file names: the same ids, rows and fingerprint
    renamed = tmp_path / "renamed"
    for path in root.rglob("*.png"):
        target = renamed / path.parent.name / f"x-{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    again = load_image_folder(renamed)
    assert frame_fingerprint(again) == frame_fingerprint(frame)
    # one changed pixel changes the fingerprint
    changed = np.asarray(Image.open(root / "square" / "square-002.png")).copy()
    changed[0, 0] ^= 0xFF
    Image.fromarray(changed).save(renamed / "square" / "x-square-002.png")
    assert frame_fingerprint(load_image_folder(renamed)) != frame_fingerprint(frame)


def test_mixed_sizes_and_modes_are_converted_and_resized_as_documented(tmp_path):
    root = write_shapes_folder(tmp_path / "shapes", per_class=3)
    Image.new("RGB", (20, 12), (255, 0, 0)).save(root / "circle" / "red.jpg")
    Image.new("RGBA", (16, 16), (0, 0, 255, 0)).save(root / "square" / "clear.png")
    frame = load_image_folder(root)
    stats = frame.attrs["source_stats"]
    assert stats["mode"] == "RGB" and stats["size"] == "16x16"
    assert stats["resized"] == 1 and stats["converted_mode"] == 10
    pixels = frame_pixels(frame)
    assert pixels.shape == (11, 16, 16, 3)
    grey = frame_pixels(frame[frame["label"] == "cross"])
    assert (grey[..., 0] == grey[..., 1]).all()  # greyscale converted to RGB stays grey
    clear = pixels[frame["id"].tolist().index(pixel_id(np.zeros((16, 16, 3), np.uint8)))]
    assert clear.max() == 0  # transparency lands on black


def test_folder_errors_name_the_file_or_class(tmp_path):
    root = write_shapes_folder(tmp_path / "shapes", per_class=2)
    (root / "empty").mkdir()
    with pytest.raises(DatasetValidationError, match="class 'empty' has no"):
        load_image_folder(root)
    (root / "empty").rmdir()
    (root / "cross" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DatasetValidationError, match=r"cross/broken\.png: not a readable image"):
        load_image_folder(root)
    with pytest.raises(DatasetSourceError, match="neither an image folder"):
        load_images(tmp_path / "nothing-here")
    with pytest.raises(DatasetValidationError, match="no class folders"):
        load_image_folder(tmp_path / "shapes" / "circle")


@pytest.fixture
def loopback_files(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; yields (folder, base URL)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_manifest_with_relative_paths_and_urls(tmp_path, loopback_files):
    folder, base = loopback_files
    rng = np.random.default_rng(3)
    rows = []
    for index, label in enumerate(SHAPES * 2):
        name = f"{label}-{index}.png"
        shape_image(label, rng).save(folder / name)
        # half the rows give a relative path, half a URL of the same kind of file
        rows.append((f"r{index}", name if index % 2 else f"{base}/{name}", label))
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows, columns=["id", "image", "label"]).to_csv(manifest, index=False)
    from_path = load_image_manifest(manifest)
    assert from_path["id"].tolist() == [f"r{i}" for i in range(6)]
    assert from_path["label"].tolist() == list(SHAPES * 2)
    from_url = load_images(f"{base}/manifest.csv")  # the manifest itself by URL
    assert frame_fingerprint(from_url) == frame_fingerprint(from_path)

    pd.DataFrame([("a", "missing.png", "circle")], columns=["id", "image", "label"]).to_csv(
        folder / "bad.csv", index=False
    )
    with pytest.raises(DatasetValidationError, match=r"row 2 image 'missing\.png'.*no such file"):
        load_image_manifest(folder / "bad.csv")
    pd.DataFrame([("a", "x.png")], columns=["id", "image"]).to_csv(folder / "nolabel.csv")
    with pytest.raises(DatasetValidationError, match="lacks column\\(s\\) label"):
        load_image_manifest(folder / "nolabel.csv")
    with pytest.raises(DatasetSourceError, match="cannot fetch"):
        load_images(f"{base}/absent.csv")


@pytest.mark.skipif(
    not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists(),
    reason="Debian package dataset-fashion-mnist not installed (make install)",
)
@pytest.mark.slow
def test_fashion_mnist_from_the_debian_package():
    frame = load_fashion_mnist(limit=300)
    assert len(frame) == 300
    assert frame.attrs["source_stats"]["images"] == 70_000
    assert frame_pixels(frame).shape == (300, 28, 28, 1)
    assert set(frame["label"]) <= {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    }  # fmt: skip
    assert frame["id"].is_unique and frame["id"].is_monotonic_increasing
