"""The VAE-GAN of Larsen et al. (2016): networks, losses, Algorithm 1, ONNX export and the bundle format.

This file imports nothing on purpose: ``model_core.bundle`` must import without torch, so the
service image (installed without torch) can read bundles.
"""
