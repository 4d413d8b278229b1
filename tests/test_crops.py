"""crops.CropReader: local files of every kind, a real IIIF server (2.1 and 3.0), static URLs,
the cache, the size rules (<= max_side, never enlarged) and errors returned as data."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from bookidx.adapters.records import Box, ImageRef, Page, Region
from bookidx.crops import CropReader
from bookidx.errors import FetchError, SourceError
from bookidx.fetch import Fetcher
from bookidx.iiif_image import target_size
from iiifserver import chapbook_iiif  # noqa: F401  (pytest fixture)


def region(image: ImageRef, box: Box, page_id: str = "p1") -> Region:
    return Region(page=Page(page_id, 0, image, image.width, image.height), box=box, kind="image")


def local(path: Path, box: Box, size: tuple[int, int] | None = None) -> Region:
    if size is None:
        with Image.open(path) as img:
            size = img.size
    return region(ImageRef(*size, path=str(path)), box)


def naive(path: Path, box: Box, side: int) -> Image.Image:
    """The reference: decode everything, crop, shrink."""
    with Image.open(path) as img:
        box = box.clip(*img.size)
        crop = img.convert("RGB").crop((box.x, box.y, box.x + box.w, box.y + box.h))
    return crop.resize(target_size(box.w, box.h, side), Image.Resampling.BICUBIC)


def diff(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


def page_pixels(w: int, h: int) -> np.ndarray:
    """A smooth, structured page-like picture (so crops at different scales compare)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 100 * np.sin(x / 97.0) * np.cos(y / 131.0)
    g = 128 + 100 * np.sin((x + y) / 211.0)
    b = np.where(((x // 240) + (y // 240)) % 2 == 0, 200, 60).astype(np.float32)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pages") / "page.jpg"
    Image.fromarray(page_pixels(2400, 3200)).save(path, quality=92)
    return path


@pytest.fixture
def reader():
    with Fetcher() as f:
        yield CropReader(f, max_side=224)


# -- local files ---------------------------------------------------------------------------

def test_local_jpeg_crop_matches_full_decode(big_jpeg, reader):
    box = Box(300, 500, 1600, 1200)
    got = reader.read(local(big_jpeg, box))
    assert got.mode == "RGB" and got.size == (224, 168)
    assert diff(got, naive(big_jpeg, box, 224)) < 3


def test_dct_scaled_crop_is_not_shifted_on_fine_detail(tmp_path, reader):
    # Fine stripes (period 25 px) on a page whose width is no multiple of 8: a box off by one
    # full-resolution pixel differs by 10+ here, so the decoder's exact scale must be used.
    y, x = np.mgrid[0:1200, 0:1601].astype(np.float32)
    path = tmp_path / "fine.jpg"
    Image.fromarray((128 + 100 * np.sin(x / 4.0) * np.cos(y / 9.0)).astype(np.uint8)).save(path, quality=95)
    for box in (Box(101, 203, 1003, 805), Box(7, 9, 1590, 1180)):
        assert diff(reader.read(local(path, box)), naive(path, box, 224)) < 4


def test_jpeg_is_decoded_shrunk_but_still_big_enough(big_jpeg, reader, monkeypatch):
    decoded = []
    load = JpegImagePlugin.JpegImageFile.load

    def spy(self):
        decoded.append(self.size)
        return load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", spy)
    got = reader.read(local(big_jpeg, Box(0, 0, 1800, 900)))  # 8x larger than 224
    assert decoded and decoded[0] == (300, 400)  # DCT-scaled 1/8: a 64th of the pixels
    assert got.size == (224, 112)
    decoded.clear()
    reader.read(local(big_jpeg, Box(0, 0, 300, 200)))  # small box: no shrink possible
    assert decoded[0] == (2400, 3200)


def test_small_boxes_are_not_enlarged(big_jpeg, reader):
    assert reader.read(local(big_jpeg, Box(10, 10, 60, 40))).size == (60, 40)


def test_box_is_clipped_and_outside_box_fails(big_jpeg, reader):
    assert reader.read(local(big_jpeg, Box(2300, 3100, 500, 500))).size == (100, 100)
    with pytest.raises(SourceError, match="outside") as err:
        reader.read(local(big_jpeg, Box(2400, 0, 10, 10)))
    assert err.value.parameter == str(big_jpeg)


def test_derivative_file_gets_the_box_rescaled(big_jpeg, tmp_path, reader):
    half = tmp_path / "half.jpg"
    with Image.open(big_jpeg) as img:
        img.resize((1200, 1600)).save(half, quality=92)
    # The box was measured on the 2400x3200 master; the file on disk is half of it.
    box = Box(400, 600, 800, 400)
    got = reader.read(region(ImageRef(2400, 3200, path=str(half)), box))
    assert diff(got, naive(half, Box(200, 300, 400, 200), 224)) < 3


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_grey_and_cmyk_jpegs_come_back_rgb(tmp_path, reader, mode):
    path = tmp_path / f"{mode}.jpg"
    Image.fromarray(page_pixels(800, 600)).convert(mode).save(path)
    got = reader.read(local(path, Box(100, 100, 600, 400)))
    assert got.mode == "RGB" and got.size == (224, 149)
    assert diff(got, naive(path, Box(100, 100, 600, 400), 224)) < 3


def test_palette_transparency_and_16_bit(tmp_path, reader):
    pal = tmp_path / "p.png"
    img = Image.new("P", (100, 100), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(1, (50, 0, 100, 100))
    img.info["transparency"] = 0
    img.save(pal, transparency=0)
    got = reader.read(local(pal, Box(0, 0, 100, 100)))
    assert got.getpixel((10, 10)) == (255, 255, 255)  # transparent: page white
    assert got.getpixel((90, 10)) == (255, 0, 0)

    deep = tmp_path / "16.png"
    Image.fromarray(np.full((64, 64), 32896, np.uint16)).save(deep)  # mid grey, 16 bit
    with Image.open(deep) as check:
        assert check.mode.startswith("I")
    assert reader.read(local(deep, Box(0, 0, 64, 64))).getpixel((5, 5)) == (128, 128, 128)


def test_multi_page_tiff_uses_frame_0(tmp_path, reader):
    path = tmp_path / "pages.tif"
    first = Image.new("RGB", (400, 300), (10, 200, 10))
    second = Image.new("RGB", (200, 150), (200, 10, 10))  # another page, not a reduced copy
    first.save(path, save_all=True, append_images=[second])
    got = reader.read(local(path, Box(0, 0, 400, 300)))
    assert got.size == (224, 168) and got.getpixel((100, 100)) == (10, 200, 10)


def test_pyramidal_tiff_reads_a_reduced_level(corpus, reader):
    path = corpus / "ocrd-assets/indian-ferns/data/OCR-D-IMG/0004.tif"  # 6 frames, JPEG-in-TIFF
    box = Box(300, 600, 2000, 2400)
    got = reader.read(local(path, box))
    assert got.size == (187, 224)
    assert diff(got, naive(path, box, 224)) < 4


def test_jpeg2000_real_page(corpus, reader):
    path = corpus / "lsu-loyola-maroon-1923/19231115/mn_19231115_002.jp2"  # 3097x4149 'L'
    box = Box(200, 300, 2400, 1800)
    got = reader.read(local(path, box))
    assert got.mode == "RGB" and got.size == (224, 168)
    assert diff(got, naive(path, box, 224)) < 4


@pytest.mark.parametrize("size", [(1025, 1029), (1024, 768)])
def test_jpeg2000_sizes_that_pillow_rounds_differently(tmp_path, reader, size):
    path = tmp_path / "page.jp2"
    Image.fromarray(page_pixels(*size)).save(path)
    box = Box(0, 0, *size)
    assert diff(reader.read(local(path, box)), naive(path, box, 224)) < 4


def test_megapixel_guard_and_decompression_bomb(big_jpeg, monkeypatch):
    with Fetcher() as f:
        strict = CropReader(f, max_side=224, max_megapixels=5.0)
        with pytest.raises(SourceError, match="8 megapixels, over the limit of 5"):
            strict.read(local(big_jpeg, Box(0, 0, 100, 100)))
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)  # Pillow's own guard
        with pytest.raises(SourceError, match="decompression bomb"):
            CropReader(f, max_side=224).read(local(big_jpeg, Box(0, 0, 100, 100), size=(2400, 3200)))


def test_corrupt_truncated_missing_and_non_image_files(big_jpeg, tmp_path, reader):
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(big_jpeg.read_bytes()[:20000])
    text = tmp_path / "page.jpg"
    text.write_bytes(b"<html>not found</html>")
    cases = [(cut, "truncated"), (text, "not an image"), (tmp_path / "gone.jpg", "not found")]
    for path, reason in cases:
        with pytest.raises(SourceError, match=reason) as err:
            reader.read(region(ImageRef(2400, 3200, path=str(path)), Box(0, 0, 100, 100)))
        assert err.value.parameter == str(path)


# -- IIIF ----------------------------------------------------------------------------------

@pytest.mark.parametrize("api", [2, 3])
def test_iiif_crops_equal_local_crops(chapbook_iiif, api, reader):
    for ident in chapbook_iiif.identifiers:
        path = chapbook_iiif.path(ident)
        for box in (Box(40, 60, 500, 700), Box(0, 0, 600, 300)):
            remote = reader.read(region(chapbook_iiif.ref(ident, api), box))
            near = reader.read(local(path, box))
            assert remote.mode == "RGB" and remote.size == near.size
            assert diff(remote, near) < 5, (ident, box)  # an 8 px shift gives 10+


@pytest.mark.parametrize("api", [2, 3])
def test_iiif_small_boxes_are_not_enlarged(chapbook_iiif, api, reader):
    ident = chapbook_iiif.identifiers[0]
    assert reader.read(region(chapbook_iiif.ref(ident, api), Box(100, 100, 80, 50))).size == (80, 50)
    # Size unknown to the manifest: info.json tells, so 2.1 is not asked to enlarge either.
    unsized = chapbook_iiif.ref(ident, api, sized=False)
    assert reader.read(region(unsized, Box(100, 100, 80, 50))).size == (80, 50)


def test_iiif_cache_means_a_second_read_does_no_http(chapbook_iiif, tmp_path):
    regions = [region(chapbook_iiif.ref(i, 3), Box(10, 20, 400, 300)) for i in chapbook_iiif.identifiers]
    with Fetcher(cache_dir=tmp_path) as f:
        first = [CropReader(f, 224).read(r) for r in regions]
        assert f.stats.requests == len(regions)
    with Fetcher(cache_dir=tmp_path) as f:  # a re-run
        again = [CropReader(f, 224).read(r) for r in regions]
        assert (f.stats.requests, f.stats.cache_hits) == (0, len(regions))
    assert [np.asarray(a).tobytes() for a in first] == [np.asarray(b).tobytes() for b in again]


def test_iiif_unknown_image_is_a_fetch_error(chapbook_iiif, reader):
    missing = ImageRef(600, 900, service=chapbook_iiif.service("no-such-page", 3), api=3)
    with pytest.raises(FetchError):
        reader.read(region(missing, Box(0, 0, 100, 100)))


# -- static URLs and read_many ---------------------------------------------------------------

class _Counting(SimpleHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.hits.append(self.path)
        super().do_GET()


@pytest.fixture
def static_site(big_jpeg, tmp_path):
    (tmp_path / "page.jpg").write_bytes(big_jpeg.read_bytes())
    (tmp_path / "notes.txt").write_bytes(b"plain text, not a picture")
    _Counting.hits = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Counting, directory=str(tmp_path)))
    threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", _Counting.hits
    srv.shutdown()
    srv.server_close()


def test_static_image_is_fetched_once_for_all_its_regions(static_site, big_jpeg):
    base, hits = static_site
    image = ImageRef(2400, 3200, url=f"{base}/page.jpg")
    boxes = [Box(100 * i, 150 * i, 900, 700) for i in range(8)]
    with Fetcher() as f:  # no disk cache: the in-memory copy serves the page's other regions
        results = list(CropReader(f, 224).read_many([region(image, b) for b in boxes], workers=4))
    assert hits == ["/page.jpg"]
    for (reg, img), box in zip(results, boxes):
        assert reg.box == box
        assert diff(img, naive(big_jpeg, box, 224)) < 3


def test_read_many_keeps_order_and_returns_errors_as_data(static_site, big_jpeg):
    base, _ = static_site
    good = local(big_jpeg, Box(0, 0, 500, 500))
    not_image = region(ImageRef(100, 100, url=f"{base}/notes.txt"), Box(0, 0, 10, 10))
    missing = region(ImageRef(100, 100, url=f"{base}/missing.jpg"), Box(0, 0, 10, 10))
    no_pixels = region(ImageRef(100, 100), Box(0, 0, 10, 10))
    todo = [good, not_image, good, missing, no_pixels, good]
    with Fetcher(retries=0) as f:
        results = list(CropReader(f, 128).read_many(todo, workers=3))
    assert [r for r, _ in results] == todo
    kinds = [type(x).__name__ for _, x in results]
    assert kinds == ["Image", "SourceError", "Image", "FetchError", "SourceError", "Image"]
    assert "not an image" in results[1][1].detail and results[1][1].parameter.endswith("notes.txt")
    assert results[0][1].size == (128, 128)
