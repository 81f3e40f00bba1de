"""codo's command-line apps (installed as `codo_cli`): `codo-aug` and `codo-train`."""
