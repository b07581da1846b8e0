"""Take an architecture home: standalone torch code (+ weights), ONNX, or JSON, with a manifest."""

from nas.export.codegen import ExportError
from nas.export.core import FORMATS, MANIFEST, ExportResult, export_architecture, read_manifest, resolve

__all__ = ["FORMATS", "MANIFEST", "ExportError", "ExportResult", "export_architecture", "read_manifest", "resolve"]
