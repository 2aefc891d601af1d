"""Rendering (``pyface3d.render``): depth, PNCC, normals, albedo, SH Lambertian shading,
textured rendering, Z-buffer visibility, overlays and mesh export. See docs/render.md."""
from .export import read_obj, read_ply, write_obj, write_ply, write_png  # noqa: F401
from .geometry import face_normals, vertex_normals, vertex_visibility  # noqa: F401
from .overlay import overlay  # noqa: F401
from .renderer import (Fragments, face_roi, rasterize, render_albedo,  # noqa: F401
                       render_attributes, render_depth, render_normals, render_pncc,
                       render_rgb, render_shading)
from .shading import (LAMBERT_A, SH_CONSTANTS, irradiance, sh_ambient, sh_basis,  # noqa: F401
                      sh_directional, shade)
from ..ops import ncc_code  # noqa: F401
