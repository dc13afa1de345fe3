"""``python -m repghost_mini ...`` (and the ``repghost-mini`` console script): see :mod:`repghost_mini.cli`."""
from repghost_mini.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
