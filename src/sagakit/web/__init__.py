"""HTTP API and dashboard for sagakit: ``create_app(runtime)`` or ``sagakit serve``.

Needs the ``web`` extra: ``pip install 'sagakit[web]'``.
"""

from .app import create_app
from .settings import WebSettings

__all__ = ["WebSettings", "create_app"]
