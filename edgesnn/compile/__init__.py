"""Compile an IR graph into a Program (float32 or fixed point) and quantize it."""

from edgesnn.compile.program import FIXED, FLOAT32, Memory, Op, Program, Source, State, compile_graph
from edgesnn.compile.quantize import Quantization, calibrate

__all__ = ["compile_graph", "calibrate", "Program", "Op", "Source", "Memory", "State",
           "Quantization", "FLOAT32", "FIXED"]
