"""The jobs layer's tables."""
