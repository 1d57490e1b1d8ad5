"""Request and response bodies of the API (JSON), as pydantic models for validation and OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from service.labels import Method
from service.priors import PriorName

MAX_LATENT_ROWS = 1024  # parse-time bound; the route applies VAEGAN_MAX_SAMPLES
MAX_LATENT_WIDTH = 4096
LATENT_BOUND = 1e3  # |z| beyond this is no latent of a N(0, I) prior: refused, not decoded

# strict: a JSON number only (true, "1" are refused, as the schema says), integers included.
Latent = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-LATENT_BOUND, le=LATENT_BOUND)]
LatentRow = Annotated[list[Latent], Field(min_length=1, max_length=MAX_LATENT_WIDTH)]


# A class by name or index; strict, so true or 1.5 is refused rather than coerced.
ClassLabel = Annotated[str, Field(strict=True, min_length=1, max_length=64)] | Annotated[int, Field(strict=True, ge=0)]


class DecodeRequest(BaseModel):
    """Latents to decode, one row per image; a conditional model also needs labels (one, or one per row)."""

    z: Annotated[list[LatentRow], Field(min_length=1, max_length=MAX_LATENT_ROWS)]
    labels: Annotated[list[ClassLabel], Field(min_length=1, max_length=MAX_LATENT_ROWS)] | None = None


class InterpolateLatents(BaseModel):
    """The two ends of an interpolation, as latents."""

    a: LatentRow
    b: LatentRow


class EditInfo(BaseModel):
    """What /edit did: the classes, the method and the strength of each frame."""

    source: str  # the class edited from (given, or inferred: see docs/api.md)
    target: str
    strengths: list[float]


class ImagesOut(BaseModel):
    """Images as base64 PNGs, with the latents they came from or went to."""

    images: list[str]  # base64-encoded PNG, one per image
    latents: list[list[float]] | None = None
    seed: int | None = None
    labels: list[str] | None = None  # the class of each image (class-aware routes)
    label_method: Method | None = None  # how a label was honoured (docs/api.md)
    edit: EditInfo | None = None
    prior: PriorName | None = None  # where z was drawn: "standard" is N(0, I)
    log_density: list[float] | None = None  # log E_q[p(z)] under the fitted prior, per input (docs/api.md)
    typicality: list[float] | None = None  # the share of held-out training images with a lower log density
    model_version: str


class EncodeOut(BaseModel):
    """The posterior q(z|x) = N(mu, exp(logvar)) of one image; z when a sample was asked for."""

    mu: list[float]
    logvar: list[float]
    z: list[float] | None = None
    seed: int | None = None
    log_density: float | None = None  # log E_q[p(z)] under the fitted prior: the drift signal (docs/api.md)
    typicality: float | None = None  # the share of held-out training images with a lower log density
    model_version: str


class SimilarityOut(BaseModel):
    """Distances between two images: in Dis_l feature space (learned) and in pixel space."""

    learned_distance: float  # 1/2 ||Dis_l(a) - Dis_l(b)||^2: the paper's L_llike between them
    pixel_distance: float  # 1/2 ||a - b||^2 over model-input pixels
    learned_mse: float  # mean squared feature difference
    pixel_mse: float  # mean squared pixel difference
    features: int
    pixels: int
    model_version: str


class Live(BaseModel):
    status: str = "ok"


class Ready(BaseModel):
    status: str = "ready"
    model: str  # the default model (the first VAEGAN_MODEL_NAME lists)
    version: str
    models: dict[str, str] = {}  # every served model -> its version


class ModelSummary(BaseModel):
    """One configured model: what GET /models lists."""

    name: str
    default: bool  # served when a request names no model
    ready: bool
    version: str | None  # None until a version has loaded
    reason: str = ""  # why it is not ready
    latent_dim: int | None = None
    image: list[int] | None = None  # [channels, height, width]
    conditional: bool | None = None
    classes: int | None = None
    prior: PriorName | None = None  # the default prior of /sample
    dataset: str | None = None


class ModelsOut(BaseModel):
    models: list[ModelSummary]


class KServeLive(BaseModel):
    live: bool


class KServeReady(BaseModel):
    ready: bool


class ServerMetadata(BaseModel):
    """GET /v2: the Open Inference Protocol's server metadata."""

    name: str
    version: str
    extensions: list[str]


class ModelOut(BaseModel):
    """The serving model: its manifest and how it runs."""

    manifest: dict[str, Any]
    provider: str
    session_options: dict[str, Any]
    loaded_at: float
    load_seconds: float
    batching: dict[str, Any]
    limits: dict[str, int]
    classes: list[str]  # the class names /sample?label= takes (empty: none)
    conditional: bool  # the encoder and decoder take a label (then /reconstruct, /encode need one)
    label_method: Method | None  # how a label is honoured; None: it is not
    prior: dict[str, Any] | None = None  # the fitted prior's summary (manifest.prior), None: N(0, I) only
    default_prior: PriorName = "standard"  # what /sample draws from without prior=


class PriorOut(BaseModel):
    """The fitted prior (prior.npz, docs/bundle.md): a Gaussian mixture, and one per class when labelled."""

    info: dict[str, Any]  # manifest.prior
    weights: list[float]  # (M,)
    locs: list[list[float]]  # (M, Z)
    scale_tril: list[list[list[float]]]  # (M, Z, Z) lower Cholesky factors of the covariances
    class_weights: list[list[float]] | None = None  # (K, Mk)
    class_locs: list[list[list[float]]] | None = None  # (K, Mk, Z)
    class_scale_tril: list[list[list[list[float]]]] | None = None  # (K, Mk, Z, Z)
    reference: list[float]  # percentiles 0..100 of log p(mu) over held-out training latents
