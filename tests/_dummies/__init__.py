"""Tiny fixtures shared by the tests: easy image data and a small MC-dropout model."""
