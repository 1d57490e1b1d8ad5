"""``vaegan-triton``: a model bundle as an NVIDIA Triton Inference Server model repository.

One Triton model per ONNX file of the bundle, in Triton's layout::

    OUT/<name>_encoder/config.pbtxt
    OUT/<name>_encoder/<n>/model.onnx         (a verified copy of encoder.onnx)
    OUT/<name>_encoder/<n>/manifest.json      (the bundle's manifest, byte for byte)
    OUT/<name>_decoder/...   OUT/<name>_discriminator_features/...

Triton's versions are integers (``n``, default 1), so each config records the bundle's own version
and the checksums in its ``parameters``. Torch-free: only the bundle format (``model_core.bundle``)
and onnxruntime, as in the service image.

    config.py      the ModelConfig of one ONNX file, in protobuf text format
    repository.py  reading a verified bundle and writing the repository atomically
    cli.py         the command line
"""

from service.triton.config import PLATFORM
from service.triton.repository import network_model_name

__all__ = ["PLATFORM", "network_model_name"]
