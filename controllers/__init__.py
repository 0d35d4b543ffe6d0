"""Plants, PID reference and evolved SNN controllers (installed as edgesnn.controllers)."""
