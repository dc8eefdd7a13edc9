"""``python -m clients.warm_executor`` here, ``python -m warm_executor`` from the image's /app."""

from .cli import main

if __name__ == "__main__":
    main()
