"""insitu: train neural networks in situ on simulated neuromorphic and analog hardware."""

__version__ = "0.1.0"
