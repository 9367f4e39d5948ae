"""Entry point for ``python -m tfcli``."""

from tfcli.cli import main

if __name__ == "__main__":
    main()
