#!/usr/bin/env python3
"""Fill in tickethub.conf's ${TICKETHUB_*} placeholders and print the result.

    python3 deploy/nginx/render.py --upstream 127.0.0.1:5000 --listen 80 \\
        --server-name tickets.example.org > /etc/nginx/conf.d/tickethub.conf
    nginx -t && systemctl reload nginx

Standard library only. nginx's own ``$variables`` are left alone, an unknown placeholder is
an error, and a value that could add nginx directives (spaces, ``;``, braces, quotes, ``$``)
is refused. ``envsubst '${TICKETHUB_UPSTREAM} ${TICKETHUB_LISTEN} ${TICKETHUB_SERVER_NAME}
${TICKETHUB_CACHE_DIR}'`` does the same fill-in, without those checks.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).with_name("tickethub.conf")
PLACEHOLDER = re.compile(r"\$\{(TICKETHUB_[A-Z_]+)\}")
SAFE_VALUE = re.compile(r"[A-Za-z0-9_.:/\[\]*-]+")

# option -> (placeholder, default, help)
SETTINGS = {
    "upstream": ("TICKETHUB_UPSTREAM", "127.0.0.1:5000",
                 "gunicorn's address, HOST:PORT or unix:/path (default %(default)s)"),
    "listen": ("TICKETHUB_LISTEN", "80", "nginx's listen address (default %(default)s)"),
    "server_name": ("TICKETHUB_SERVER_NAME", "_",
                    "the site's host name (default %(default)s: any)"),
    "cache_dir": ("TICKETHUB_CACHE_DIR", "/var/cache/nginx/tickethub",
                  "where nginx keeps cached answers (default %(default)s)"),
}


def render(values: dict[str, str]) -> str:
    """The configuration with every placeholder replaced by ``values[NAME]``."""
    text = TEMPLATE.read_text()
    for name, value in values.items():
        if not SAFE_VALUE.fullmatch(value):
            raise ValueError(f"{name}={value!r}: not a plain address, name or path")
    missing = sorted(set(PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise ValueError(f"no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for option, (_, default, text) in SETTINGS.items():
        parser.add_argument("--" + option.replace("_", "-"), default=default, help=text)
    args = parser.parse_args(argv)
    values = {name: getattr(args, option) for option, (name, _, _) in SETTINGS.items()}
    try:
        sys.stdout.write(render(values))
    except ValueError as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
