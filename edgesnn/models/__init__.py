"""Builders for model families. Each returns an edgesnn Model."""
