"""iiif_image: request URLs checked against the Image API specs' own examples, the no-upscale
rule, service-id quirks, and a real server answering every URL built for 1.1, 2.1 and 3.0."""

from __future__ import annotations

import io

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bookidx.adapters.records import Box, ImageRef
from bookidx.errors import BadRequest
from bookidx.iiif_image import image_url, info_url, service_base, target_size, thumbnail_url
from iiifserver import chapbook_iiif  # noqa: F401  (pytest fixture)

V1 = "http://www.example.org/prefix1/abcd1234"
V2 = "http://www.example.org/image-service/abcd1234"
V3 = "https://example.org/image-service/abcd1234"


def ref(service: str, api: int | None, w: int = 6000, h: int = 4000) -> ImageRef:
    return ImageRef(w, h, service=service, api=api)


# (ref, box, max_side, expected): the URLs are those of the specs' examples.
SPEC_TABLE = [
    # 2.1 §2.1 "Image Request URI Syntax": the whole image at full size
    (ref(V2, 2), None, None, f"{V2}/full/full/0/default.jpg"),
    # 3.0 §2.1: the same, where 3.0 names the unscaled size "max"
    (ref(V3, 3), None, None, f"{V3}/full/max/0/default.jpg"),
    # 1.1 §2: quality "native"
    (ref(V1, 1), None, None, f"{V1}/full/full/0/native.jpg"),
    # 2.1 §4.1 / 3.0 §4.1 region by pixels, example 125,15,120,140 (no scaling needed)
    (ref(V2, 2), Box(125, 15, 120, 140), None, f"{V2}/125,15,120,140/full/0/default.jpg"),
    (ref(V3, 3), Box(125, 15, 120, 140), None, f"{V3}/125,15,120,140/max/0/default.jpg"),
    (ref(V1, 1), Box(125, 15, 120, 140), None, f"{V1}/125,15,120,140/full/0/native.jpg"),
    # 2.1 §4.2 / 3.0 §4.2 best-fit size, example !225,100 (a 450x200 region halved)
    (ref(V2, 2), Box(125, 15, 450, 200), 225, f"{V2}/125,15,450,200/!225,100/0/default.jpg"),
    (ref(V3, 3), Box(125, 15, 450, 200), 225, f"{V3}/125,15,450,200/!225,100/0/default.jpg"),
    (ref(V1, 1), Box(125, 15, 450, 200), 225, f"{V1}/125,15,450,200/!225,100/0/native.jpg"),
]


@pytest.mark.parametrize("image, box, max_side, expected", SPEC_TABLE)
def test_spec_examples(image, box, max_side, expected):
    assert image_url(image, box, max_side) == expected


@pytest.mark.parametrize("api, unscaled", [(1, "full"), (2, "full"), (3, "max")])
def test_small_boxes_are_never_upscaled(api, unscaled):
    small = Box(10, 20, 100, 50)
    assert image_url(ref(V3, api), small, 384).split("/")[-3] == unscaled
    # exactly max_side is not a shrink either
    assert image_url(ref(V3, api), Box(0, 0, 384, 10), 384).split("/")[-3] == unscaled


def test_shrinks_whole_image_and_uses_full_region_for_whole_box():
    page = ref(V3, 3, 3000, 4000)
    assert image_url(page, None, 1000) == f"{V3}/full/!750,1000/0/default.jpg"
    assert image_url(page, Box(0, 0, 3000, 4000), 1000) == f"{V3}/full/!750,1000/0/default.jpg"


def test_box_is_clipped_to_the_image_and_outside_box_is_refused():
    page = ref(V2, 2, 1000, 800)
    assert image_url(page, Box(900, 700, 300, 300)) == f"{V2}/900,700,100,100/full/0/default.jpg"
    assert image_url(page, Box(-50, -50, 100, 100)) == f"{V2}/0,0,50,50/full/0/default.jpg"
    with pytest.raises(BadRequest, match="outside"):
        image_url(page, Box(1000, 0, 10, 10))


def test_thin_boxes_keep_at_least_one_pixel():
    assert image_url(ref(V3, 3), Box(0, 0, 4000, 3), 100).split("/")[-3] == "!100,1"


@pytest.mark.parametrize("service", [V3, V3 + "/", V3 + "/info.json", V3 + "/info.json/", " " + V3 + " "])
def test_service_ids_with_slash_or_info_json(service):
    assert service_base(service) == V3
    assert image_url(ref(service, 3), None, None) == f"{V3}/full/max/0/default.jpg"
    assert info_url(ref(service, 3)) == f"{V3}/info.json"


def test_unknown_version_is_treated_as_2():
    assert image_url(ref(V2, None), Box(1, 2, 3, 4)) == f"{V2}/1,2,3,4/full/0/default.jpg"


def test_unknown_size_asks_for_best_fit_in_a_square():
    unsized = ImageRef(service=V3, api=3)
    assert image_url(unsized, None, 224) == f"{V3}/full/!224,224/0/default.jpg"
    assert image_url(unsized, Box(5, 5, 50, 50)) == f"{V3}/5,5,50,50/max/0/default.jpg"


def test_format_parameter():
    assert image_url(ref(V3, 3), None, None, fmt="png").endswith("/default.png")


def test_static_image_fallback_and_missing_image():
    static = ImageRef(800, 600, url="https://example.org/page1.jpg")
    assert image_url(static, Box(0, 0, 10, 10), 100) == "https://example.org/page1.jpg"
    with pytest.raises(BadRequest):
        image_url(ImageRef(800, 600, path="/scans/1.tif"))
    with pytest.raises(BadRequest):
        info_url(static)
    with pytest.raises(BadRequest):
        image_url(ref(V3, 3), None, 0)


def test_thumbnail_url_is_the_same_request():
    page = ref(V3, 3)
    assert thumbnail_url(page, Box(10, 10, 2000, 1000), 200) == image_url(page, Box(10, 10, 2000, 1000), 200)


@given(st.integers(1, 20000), st.integers(1, 20000), st.integers(1, 4096))
def test_target_size_fits_never_enlarges_and_keeps_aspect(w, h, side):
    tw, th = target_size(w, h, side)
    assert 1 <= tw <= w and 1 <= th <= h
    assert max(tw, th) <= max(side, 1)
    if max(w, h) > side:
        assert max(tw, th) == side
        long_side, short = (w, h) if w >= h else (h, w)
        t_long, t_short = (tw, th) if w >= h else (th, tw)
        assert abs(t_short - short * t_long / long_side) <= 1  # rounding only


@pytest.mark.parametrize("api", [1, 2, 3])
def test_a_real_server_answers_with_the_size_asked_for(chapbook_iiif, api):
    ident = chapbook_iiif.identifiers[0]
    page = chapbook_iiif.ref(ident, api)
    cases = [(None, 200), (Box(50, 100, 400, 300), 200), (Box(50, 100, 120, 90), 200), (None, None)]
    for box, side in cases:
        url = image_url(page, box, side)
        resp = requests.get(url, timeout=10)
        assert resp.status_code == 200, url
        got = Image.open(io.BytesIO(resp.content)).size
        region = (box.w, box.h) if box else (page.width, page.height)
        assert got == target_size(*region, side), url
    info = requests.get(info_url(page), timeout=10).json()
    assert (info["width"], info["height"]) == (page.width, page.height)
