"""Photos of every Pillow mode come out like Fashion-MNIST: (C, H, W) uint8, dark background."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convlens.data import images as images_module
from convlens.data.images import load_image, prepare_image, resize_batch, to_8bit
from convlens.errors import ImageError, OptionError


def dark_square_on_white(size: tuple[int, int] = (40, 40)) -> Image.Image:
    """A white (W, H) picture with a black square in the middle: a product photo."""
    image = Image.new("L", size, 255)
    w, h = size
    image.paste(0, (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    return image


def test_white_background_is_inverted_to_black() -> None:
    out = prepare_image(dark_square_on_white())
    assert out.shape == (1, 28, 28) and out.dtype == np.uint8
    assert out[0, 0, 0] == 0  # background now black
    assert out[0, 14, 14] == 255  # object now bright


def test_dark_background_is_kept_and_invert_can_be_forced() -> None:
    image = Image.new("L", (28, 28), 0)
    image.paste(200, (7, 7, 21, 21))
    auto = prepare_image(image)
    assert auto[0, 0, 0] == 0 and auto[0, 14, 14] == 200
    forced = prepare_image(image, invert=True)
    assert forced[0, 0, 0] == 255 and forced[0, 14, 14] == 55
    kept = prepare_image(dark_square_on_white(), invert=False)
    assert kept[0, 0, 0] == 255


def test_aspect_ratio_is_kept_and_padded_with_background() -> None:
    wide = dark_square_on_white((80, 40))  # W=80, H=40 -> 28x14 inside 28x28
    out = prepare_image(wide)[0]
    assert (out[:6] == 0).all() and (out[-6:] == 0).all()  # padding rows, black
    assert out[14, 14] == 255


def test_rgba_transparent_background_becomes_white_then_black() -> None:
    image = Image.new("RGBA", (30, 30), (0, 0, 0, 0))  # fully transparent "black"
    image.paste((40, 40, 40, 255), (10, 10, 20, 20))
    out = prepare_image(image)
    assert out[0, 0, 0] == 0  # transparent -> white -> inverted
    assert out[0, 14, 14] > 180  # dark object -> bright


def test_la_and_palette_with_transparency() -> None:
    la = Image.new("LA", (20, 20), (0, 0))
    la.paste((10, 255), (5, 5, 15, 15))
    assert to_8bit(la).mode == "L"
    assert prepare_image(la)[0, 0, 0] == 0

    palette = Image.new("P", (20, 20), 0)
    palette.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    palette.paste(1, (5, 5, 15, 15))
    palette.info["transparency"] = 0  # index 0 (red) is transparent -> white
    out = prepare_image(palette)
    assert out[0, 0, 0] == 0 and out[0, 14, 14] == 255


def test_sixteen_bit_grey() -> None:
    values = np.full((20, 20), 65535, dtype=np.uint16)
    values[5:15, 5:15] = 0
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    flat = to_8bit(image)
    assert flat.mode == "L" and np.asarray(flat).max() == 255
    out = prepare_image(image)
    assert out[0, 0, 0] == 0 and out[0, 14, 14] == 255


def test_sixteen_bit_png_file(tmp_path: Path) -> None:
    values = np.linspace(0, 65535, 16 * 16).astype(np.uint16).reshape(16, 16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    loaded = load_image(tmp_path / "deep.png")
    assert loaded.mode.startswith("I")
    out = prepare_image(loaded, invert=False, size=(16, 16))
    assert out[0, 0, 0] == 0 and out[0, -1, -1] == 255


def test_cmyk_and_other_modes() -> None:
    cmyk = Image.new("CMYK", (20, 20), (0, 0, 0, 0))  # no ink: white
    cmyk.paste((0, 0, 0, 255), (5, 5, 15, 15))  # black ink
    out = prepare_image(cmyk)
    assert out[0, 0, 0] == 0 and out[0, 14, 14] == 255
    for mode in ("1", "F", "I", "YCbCr", "HSV"):
        image = Image.new(mode, (10, 10))
        assert prepare_image(image).shape == (1, 28, 28)


def test_rgb_output_and_size() -> None:
    image = Image.new("RGB", (50, 30), (255, 255, 255))
    image.paste((255, 0, 0), (20, 10, 30, 20))
    out = prepare_image(image, size=(32, 24), channels=3)
    assert out.shape == (3, 32, 24)
    assert tuple(out[:, 0, 0]) == (0, 0, 0)
    red, green, blue = out[:, 16, 12]
    assert red < 20 and green > 200 and blue > 200  # red inverted is cyan


def test_bad_options() -> None:
    with pytest.raises(OptionError):
        prepare_image(Image.new("L", (5, 5)), channels=2)
    with pytest.raises(OptionError):
        prepare_image(Image.new("L", (5, 5)), size=(0, 28))


def test_prepare_image_accepts_a_path(tmp_path: Path) -> None:
    dark_square_on_white().save(tmp_path / "shoe.jpg")
    out = prepare_image(tmp_path / "shoe.jpg")
    assert out[0, 0, 0] < 10 and out[0, 14, 14] > 245


def test_load_image_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not an image")
    dark_square_on_white((200, 200)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    dark_square_on_white((200, 200)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    cases = {
        "missing.png": "no such file",
        "empty.png": "empty file",
        "notes.png": "not an image",
        "cut.png": "cannot decode",
        "cut.jpg": "cannot decode",
    }
    for name, needle in cases.items():
        with pytest.raises(ImageError) as err:
            load_image(tmp_path / name)
        message = str(err.value)
        assert name in message and needle in message and "\n" not in message
    with pytest.raises(ImageError, match="not a file"):
        load_image(tmp_path)


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("L", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(images_module, "MAX_PIXELS", 5_000)
    with pytest.raises(ImageError, match="over the 5,000-pixel limit"):
        load_image(tmp_path / "big.png")


def test_decompression_bomb_from_pillow_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.new("L", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3_000)  # Pillow warns above, errors at 2x
    for limit in (3_000, 9_000):
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with pytest.raises(ImageError, match="decompression bomb"):
            load_image(tmp_path / "big.png")


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("L", (10, 10), 0), Image.new("L", (10, 10), 255)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert np.asarray(load_image(tmp_path / "anim.gif").convert("L")).max() == 0


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    image = Image.new("L", (40, 20), 255)  # wide
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    image.save(tmp_path / "phone.jpg", exif=exif)
    assert load_image(tmp_path / "phone.jpg").size == (20, 40)  # tall once rotated


def test_resize_batch() -> None:
    batch = np.zeros((2, 1, 28, 28), dtype=np.uint8)
    batch[:, :, 10:18, 10:18] = 200
    rgb = resize_batch(batch, channels=3)
    assert rgb.shape == (2, 3, 28, 28) and (rgb[:, 0] == rgb[:, 2]).all()
    assert (resize_batch(rgb, channels=1) == batch).all()
    bigger = resize_batch(batch, size=(32, 32))
    assert bigger.shape == (2, 1, 32, 32) and bigger.dtype == np.uint8
    assert bigger[0, 0, 16, 16] == 200 and bigger[0, 0, 0, 0] == 0
    assert resize_batch(batch) is batch
