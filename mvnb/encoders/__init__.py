"""Frozen pretrained encoders: musicnn for audio, R(2+1)D-18 for video."""
