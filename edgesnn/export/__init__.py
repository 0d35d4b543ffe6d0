"""Exporters: an edgesnn model to other runtimes' formats (C source for MCUs)."""
