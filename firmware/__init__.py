"""C sources shipped with edgesnn: the fixed-point runtime headers (runtime/) that
generated models include. See firmware/README.md."""
