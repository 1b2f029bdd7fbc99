"""Parallelism beyond data parallelism: sequence (context) parallelism of the video transformers."""
