"""saswot-gp: discover training-free proxies for real-time segmentation NAS (SasWOT) with typed GP."""

__version__ = "0.1.0"
