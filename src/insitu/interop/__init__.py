"""Exchange with the rest of the field's tools: networks in and out as NIR graphs.

Sits beside the experiments layer: it may use devices, hardware and algorithms, and nothing
below it imports it.
"""

from insitu.interop.nir import (
    ChipNetwork,
    LayerImport,
    NIRImport,
    export_nir,
    import_nir,
    load_nir,
    save_nir,
    simulated_calibration,
)

__all__ = [
    "ChipNetwork",
    "LayerImport",
    "NIRImport",
    "export_nir",
    "import_nir",
    "load_nir",
    "save_nir",
    "simulated_calibration",
]
