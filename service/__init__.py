"""The vaegan REST inference service: FastAPI on ONNX Runtime, reading only the model bundle.

Never imports torch or any of model_core but ``model_core.bundle``; ``create_app`` is in
``service.app`` and the ``vaegan-serve`` entry point in ``service.__main__``.
"""
