"""vaegan-train: trains the VAE-GAN on real data and exports a verified model bundle."""
