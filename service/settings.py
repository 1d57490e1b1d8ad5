"""Service settings, read from ``VAEGAN_*`` environment variables (pydantic-settings).

Every limit that protects the process (body bytes, pixels, samples, queue depth) is a setting with
a safe default, so an operator can tighten it without touching code.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from model_core.bundle import LATEST, BundleError, validate_name

ALL_MODELS = "*"  # VAEGAN_MODEL_NAME: every bundle under VAEGAN_MODELS_DIR
MIN_KEY_LENGTH = 16  # a shorter key is guessable; `openssl rand -hex 32` makes a good one


def check_key_lengths(keys: list[str], what: str) -> list[str]:
    """``keys`` when each has at least MIN_KEY_LENGTH characters; ValueError counting the short ones."""
    short = [key for key in keys if len(key) < MIN_KEY_LENGTH]
    if short:
        raise ValueError(f"{len(short)} {what} shorter than {MIN_KEY_LENGTH} characters")
    return keys


class Settings(BaseSettings):
    """Everything ``vaegan-serve`` can be told; ``VAEGAN_<FIELD>`` sets each field."""

    model_config = SettingsConfigDict(env_prefix="VAEGAN_", frozen=True, extra="forbid")  # a misspelt argument fails

    # The bundles: models/<name>/<model_version>; LATEST follows models/<name>/LATEST. model_name is
    # one name, a comma list (served side by side, the first the default of every route), or "*":
    # every bundle under models_dir when the service starts (docs/api.md, "Several models").
    models_dir: Path = Path("models")
    model_name: str = "mnist"
    model_version: str = LATEST  # a pinned version: only with a single model_name
    reload_interval_s: float = Field(default=0.0, ge=0.0)  # > 0: poll LATEST this often and swap in new versions

    # ONNX Runtime.
    provider: Literal["auto", "cuda", "cpu"] = "auto"  # auto: CUDA when onnxruntime-gpu sees a GPU
    intra_op_threads: int = Field(default=0, ge=0, le=256)  # 0: the bundle's recommendation, else measured default
    inference_threads: int = Field(default=4, ge=1, le=64)  # threads that call session.run (it releases the GIL)

    # Micro-batching, per network.
    batching: bool = True  # False (or max_batch 1): every request runs alone
    max_batch: int = Field(default=32, ge=1, le=1024)  # rows (images or latents) per ONNX Runtime call
    # How long the first queued row waits for company. 0: no deliberate wait; the rows that arrive
    # while a batch runs form the next one. On CPU a wait costs its own length per network at low
    # load and buys nothing at high load (docs/benchmarks.md, "Serving"); raise it on a GPU, where
    # bigger batches are cheaper.
    max_wait_ms: float = Field(default=0.0, ge=0.0, le=1000.0)
    max_queue: int = Field(default=1024, ge=1)  # rows waiting per network; beyond it: 503 with Retry-After
    # Batches of one network running at once. Each ONNX Runtime call uses one thread (measured best:
    # docs/benchmarks.md, "Runtime"), so one worker per core, up to 4 (with 1, bench/serve.py left a core idle).
    batch_workers: int = Field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)), ge=1, le=16)

    # Request limits.
    max_samples: int = Field(default=64, ge=1, le=1024)  # n of /sample, rows of /decode
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)  # whole request body, enforced while reading
    # Open connections (uvicorn's limit_concurrency): a request arriving beyond it is answered 503 at
    # once (by uvicorn, as plain text), so many idle or slow connections cannot exhaust the process.
    max_connections: int = Field(default=512, ge=1)
    body_timeout_s: float = Field(default=60.0, ge=0.0)  # a body not whole by then: 408, connection closed (0: none)
    max_pixels: int = Field(default=4096 * 4096, ge=1)  # width x height from the image header, before decoding
    max_output_pixels: int = Field(default=16 * 1024 * 1024, ge=1)  # an output grid (after nrow and scale)
    # Uploads and outputs of at most this many pixels are decoded and PNG-encoded on the event loop,
    # larger ones in a worker thread: for small images the hop costs more than the work, for large
    # ones holding the loop costs more than the hop (0: always a thread; docs/benchmarks.md, "Serving").
    inline_pixels: int = Field(default=256 * 256, ge=0)
    # Uploads over inline_pixels decoded at once (others wait their turn): a 4096x4096 16-bit PNG
    # holds ~50 MiB while it is decoded, so memory stays bounded whatever arrives (docs/security.md).
    max_large_decodes: int = Field(default=2, ge=1, le=64)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)  # empty: CORS off
    playground: bool = True  # the page at / and /playground (service/static/); False: 404, API only
    docs: bool = True  # /docs and /openapi.json; False: 404 (an API reference is also in docs/api.md)
    # Keys (docs/security.md): set, every route but health and the playground's static page needs one,
    # as "Authorization: Bearer KEY" or "X-API-Key: KEY". A comma list, and/or a file of one key a line
    # (a Kubernetes Secret mounted as a file). Neither: no keys, every route open as before.
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    api_keys_file: Path | None = None
    metrics_port: int | None = Field(default=None, ge=1, le=65535)  # also serve /metrics here, without a key

    # Process. uvicorn's "auto" picks httptools and uvloop, which the serve extras install (less CPU
    # per request than h11 on asyncio's loop: docs/benchmarks.md, "Serving"); h11 and asyncio
    # remain for a platform without those wheels.
    http: Literal["auto", "httptools", "h11"] = "auto"
    loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    shutdown_grace_s: float = Field(default=30.0, gt=0.0)  # in-flight requests get this long after SIGTERM
    shutdown_delay_s: float = Field(default=0.0, ge=0.0)  # /readyz is 503 this long before the listener closes
    retry_after_s: int = Field(default=1, ge=1)  # Retry-After of 503 answers
    # An ONNX Runtime call that hangs: its request answers 504 after this long (0: no deadline), and
    # after stalled_after such timeouts in a row /readyz answers 503, so an orchestrator replaces the pod.
    inference_timeout_s: float = Field(default=30.0, ge=0.0)
    stalled_after: int = Field(default=3, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # text: "time level logger [request id] message"; json: one JSON object per line (service/requestlog.py).
    log_format: Literal["text", "json"] = "text"

    @field_validator("model_name")
    @classmethod
    def _check_names(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        if names == [ALL_MODELS]:
            return ALL_MODELS
        if not names:
            raise ValueError(
                f"invalid model name {value!r}: name at least one model (or '*': every bundle under VAEGAN_MODELS_DIR)"
            )
        try:
            names = [validate_name(name) for name in names]
        except BundleError as exc:
            raise ValueError(str(exc)) from None
        if len(set(names)) < len(names):
            raise ValueError(f"a model is named twice in {value!r}")
        return ",".join(names)

    @model_validator(mode="after")
    def _pin_one_model_only(self) -> Settings:
        if self.model_version != LATEST and self.model_name_list() != [self.model_name]:
            raise ValueError("VAEGAN_MODEL_VERSION pins the version of a single model; several follow their LATEST")
        return self

    def model_name_list(self) -> list[str]:
        """The models named (empty for '*': the caller lists models_dir)."""
        return [] if self.model_name == ALL_MODELS else self.model_name.split(",")

    @field_validator("model_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if value == LATEST:
            return value
        try:
            return validate_name(value, "version")
        except BundleError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_comma_list(cls, value: object) -> object:
        if isinstance(value, str):  # "key-a, key-b" or "https://a.example, https://b.example"
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: list[str]) -> list[str]:
        return check_key_lengths(value, "API key(s)")

    def keys(self) -> list[str]:
        """Every accepted API key: VAEGAN_API_KEYS and the lines of VAEGAN_API_KEYS_FILE (read now)."""
        keys = list(self.api_keys)
        if self.api_keys_file is not None:
            lines = self.api_keys_file.read_text().splitlines()
            keys += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        return check_key_lengths(keys, f"key(s) of VAEGAN_API_KEYS or {self.api_keys_file}")

    @property
    def batching_enabled(self) -> bool:
        return self.batching and self.max_batch > 1


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment (override with ``Depends``)."""
    return Settings()
