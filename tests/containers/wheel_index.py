"""A package index on loopback for the app image's torch, where PyTorch's CPU index is unreachable.

    python -m tests.containers.wheel_index --port 9990 --wheelhouse DIR torch==2.14.1 ...

First `pip download`s the requirements with their dependencies into DIR
(the host's pip, with whatever sources it is configured with; kept between
runs), then serves DIR as a PEP 503 simple index at
http://127.0.0.1:PORT/simple/ until stopped. The app image is then built with
`--build-arg TORCH_INDEX_URL=http://127.0.0.1:PORT/simple` and
`--network host`. Test machinery only: a machine that reaches PyTorch's index
uses the Dockerfile's default.
"""

from __future__ import annotations

import argparse
import html
import re
import subprocess
import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def normalise(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project(filename: str) -> str:
    """The normalised project name of a wheel file name (`name-version-...whl`)."""
    return normalise(filename.split("-", 1)[0])


def download(wheelhouse: Path, requirements: list[str]) -> None:
    wheelhouse.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--only-binary=:all:",
            "--dest",
            str(wheelhouse),
            *requirements,
        ],
        check=True,
    )


class SimpleIndex(SimpleHTTPRequestHandler):
    """/simple/ and /simple/<project>/ pages over the files in `directory`, which are served too."""

    def do_GET(self) -> None:
        parts = [p for p in self.path.split("?", 1)[0].split("/") if p]
        if not parts or parts[0] != "simple":
            super().do_GET()  # a file of the wheelhouse
            return
        files = sorted(p.name for p in Path(self.directory).iterdir() if p.is_file())
        if len(parts) == 1:
            links = [f'<a href="{n}/">{n}</a>' for n in sorted({project(f) for f in files})]
        else:
            wanted = normalise(parts[1])
            links = [
                f'<a href="/{html.escape(f)}">{html.escape(f)}</a>'
                for f in files
                if project(f) == wanted
            ]
            if not links:
                self.send_error(404, f"no project {wanted}")
                return
        body = ("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--wheelhouse", type=Path, required=True)
    parser.add_argument("requirements", nargs="+")
    args = parser.parse_args()
    download(args.wheelhouse, args.requirements)
    handler = partial(SimpleIndex, directory=str(args.wheelhouse))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    print(f"serving http://127.0.0.1:{args.port}/simple", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
