"""Benchmarks run by ``make bench`` (``python -m bench``); each module also runs alone
(``python -m bench.http_rush``, ``python -m bench.page_weight``).

tasks.py opens its Huey store under ``INSTANCE_PATH`` when first imported, so before any
app module is imported the benchmarks get a throwaway instance folder of their own (never
the checkout's ``instance/``), removed on exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if not os.environ.get("INSTANCE_PATH"):
    os.environ["INSTANCE_PATH"] = tempfile.mkdtemp(prefix="tickethub-bench-")
    atexit.register(shutil.rmtree, os.environ["INSTANCE_PATH"], True)
