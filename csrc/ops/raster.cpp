// Schemas and input checks of the raster family (rasterize, interpolate).
#include "ops/raster.h"

#include <ATen/ops/aminmax.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <limits>

#include "ops/checks.h"

namespace pf3d {
namespace raster_ops {

namespace {

// int64 triangles are accepted and converted; index range checked against [0, n).
at::Tensor checked_triangles(const char* op, const at::Tensor& triangles, int64_t n) {
  check_dim(op, "triangles", triangles, 2, "(F, 3)");
  check_size(op, "triangles", triangles, 1, 3, "(F, 3)");
  check_dtype(op, "triangles", triangles, {at::kInt, at::kLong});
  check_numel_fits(op, "triangles", triangles.size(0), 3);
  at::Tensor tri = triangles;
  if (tri.numel() > 0) {
    auto mm = at::aminmax(tri);
    const int64_t lo = std::get<0>(mm).item<int64_t>();
    const int64_t hi = std::get<1>(mm).item<int64_t>();
    TORCH_CHECK_INDEX(lo >= 0 && hi < n, "pyface3d.", op,
                      ": argument `triangles` must hold vertex indices in [0, ", n,
                      "), got values in [", lo, ", ", hi, "]");
  }
  return tri.to(at::kInt).contiguous();
}

}  // namespace

at::Tensor check_rasterize(const at::Tensor& vertices, const at::Tensor& triangles,
                           int64_t height, int64_t width, int64_t x0, int64_t y0) {
  const char* op = "rasterize";
  check_dim(op, "vertices", vertices, 3, "(B, N, 3)");
  check_size(op, "vertices", vertices, 2, 3, "(B, N, 3)");
  check_dtype(op, "vertices", vertices, {at::kFloat, at::kDouble});
  check_same_device(op, "triangles", triangles, "vertices", vertices);
  TORCH_CHECK_VALUE(height >= 1, "pyface3d.rasterize: argument `height` must be >= 1, got ",
                    height);
  TORCH_CHECK_VALUE(width >= 1, "pyface3d.rasterize: argument `width` must be >= 1, got ",
                    width);
  constexpr int64_t lim = std::numeric_limits<int32_t>::max() / 2;
  TORCH_CHECK_VALUE(height <= lim && width <= lim,
                    "pyface3d.rasterize: arguments `height` and `width` must be <= ", lim,
                    ", got ", height, "x", width);
  TORCH_CHECK_VALUE(x0 >= -lim && x0 <= lim && y0 >= -lim && y0 <= lim,
                    "pyface3d.rasterize: arguments `x0` and `y0` must be in [", -lim, ", ", lim,
                    "], got x0=", x0, ", y0=", y0);
  // bary has B*H*W*3 elements; pixel indices must fit int32 (CUDA kernels)
  check_numel_fits(op, "the output `bary`", vertices.size(0), height, width, 3);
  check_numel_fits(op, "argument `vertices`", vertices.size(0), vertices.size(1), 3);
  return checked_triangles(op, triangles, vertices.size(1));
}

at::Tensor check_interpolate(const at::Tensor& attributes, const at::Tensor& face_index,
                             const at::Tensor& bary, const at::Tensor& triangles) {
  const char* op = "interpolate";
  check_dim(op, "attributes", attributes, 3, "(B, N, C) or (1, N, C)");
  check_dtype(op, "attributes", attributes, {at::kFloat, at::kDouble});
  check_dim(op, "face_index", face_index, 3, "(B, H, W)");
  check_dtype(op, "face_index", face_index, {at::kInt});
  check_dim(op, "bary", bary, 4, "(B, H, W, 3)");
  check_same_dtype(op, "bary", bary, "attributes", attributes);
  check_same_device(op, "face_index", face_index, "attributes", attributes);
  check_same_device(op, "bary", bary, "attributes", attributes);
  check_same_device(op, "triangles", triangles, "attributes", attributes);
  const int64_t B = face_index.size(0), H = face_index.size(1), W = face_index.size(2);
  TORCH_CHECK_VALUE(bary.size(0) == B && bary.size(1) == H && bary.size(2) == W &&
                        bary.size(3) == 3,
                    "pyface3d.interpolate: argument `bary` must have shape (B, H, W, 3) = (", B,
                    ", ", H, ", ", W, ", 3) matching `face_index`, got ", bary.sizes());
  TORCH_CHECK_VALUE(attributes.size(0) == B || attributes.size(0) == 1,
                    "pyface3d.interpolate: argument `attributes` must have shape (B, N, C) "
                    "with B = ", B, " (from `face_index`) or 1, got ", attributes.sizes());
  check_numel_fits(op, "the output", B, H, W, attributes.size(2));
  check_numel_fits(op, "the output `bary`", B, H, W, 3);
  check_numel_fits(op, "argument `attributes`", attributes.size(0), attributes.size(1),
                   attributes.size(2));
  at::Tensor tri = checked_triangles(op, triangles, attributes.size(1));
  if (face_index.numel() > 0) {
    auto mm = at::aminmax(face_index);
    const int64_t lo = std::get<0>(mm).item<int64_t>();
    const int64_t hi = std::get<1>(mm).item<int64_t>();
    TORCH_CHECK_INDEX(lo >= -1 && hi < tri.size(0), "pyface3d.interpolate: argument "
                      "`face_index` must hold -1 or triangle indices in [0, ", tri.size(0),
                      "), got values in [", lo, ", ", hi, "]");
  }
  return tri;
}

at::Tensor check_interpolate_backward(const at::Tensor& grad, const at::Tensor& face_index,
                                      const at::Tensor& bary, const at::Tensor& triangles,
                                      int64_t num_vertices) {
  const char* op = "_interpolate_backward";
  check_dim(op, "grad", grad, 4, "(B, H, W, C)");
  check_dtype(op, "grad", grad, {at::kFloat, at::kDouble});
  check_dim(op, "face_index", face_index, 3, "(B, H, W)");
  check_dtype(op, "face_index", face_index, {at::kInt});
  check_dim(op, "bary", bary, 4, "(B, H, W, 3)");
  check_same_dtype(op, "bary", bary, "grad", grad);
  check_same_device(op, "face_index", face_index, "grad", grad);
  check_same_device(op, "bary", bary, "grad", grad);
  check_same_device(op, "triangles", triangles, "grad", grad);
  TORCH_CHECK_VALUE(num_vertices >= 0, "pyface3d._interpolate_backward: argument "
                    "`num_vertices` must be >= 0, got ", num_vertices);
  const int64_t B = face_index.size(0), H = face_index.size(1), W = face_index.size(2);
  TORCH_CHECK_VALUE(grad.size(0) == B && grad.size(1) == H && grad.size(2) == W,
                    "pyface3d._interpolate_backward: argument `grad` must have shape (B, H, W, "
                    "C) matching `face_index` ", face_index.sizes(), ", got ", grad.sizes());
  TORCH_CHECK_VALUE(bary.size(0) == B && bary.size(1) == H && bary.size(2) == W &&
                        bary.size(3) == 3,
                    "pyface3d._interpolate_backward: argument `bary` must have shape (B, H, W, "
                    "3) matching `face_index`, got ", bary.sizes());
  check_numel_fits(op, "argument `grad`", B, H, W, grad.size(3));
  check_numel_fits(op, "the output", B, num_vertices, grad.size(3));
  at::Tensor tri = checked_triangles(op, triangles, num_vertices);
  if (face_index.numel() > 0) {
    auto mm = at::aminmax(face_index);
    const int64_t lo = std::get<0>(mm).item<int64_t>();
    const int64_t hi = std::get<1>(mm).item<int64_t>();
    TORCH_CHECK_INDEX(lo >= -1 && hi < tri.size(0), "pyface3d._interpolate_backward: argument "
                      "`face_index` must hold -1 or triangle indices in [0, ", tri.size(0),
                      "), got values in [", lo, ", ", hi, "]");
  }
  return tri;
}

RasterizeCall prepare_rasterize(const at::Tensor& vertices, const at::Tensor& triangles,
                                int64_t height, int64_t width, int64_t x0, int64_t y0,
                                c10::DeviceType device) {
  check_device_type("rasterize", "vertices", vertices, device);
  RasterizeCall c;
  c.triangles = check_rasterize(vertices, triangles, height, width, x0, y0);
  const int64_t B = vertices.size(0);
  const auto opts = vertices.options();
  c.face = at::empty({B, height, width}, opts.dtype(at::kInt));
  c.bary = at::empty({B, height, width, 3}, opts);
  c.depth = at::empty({B, height, width}, opts);
  c.vertices = vertices.contiguous();
  c.p = raster::RasterParams{B, vertices.size(1), c.triangles.size(0), height, width, x0, y0};
  if (B == 0) {
    c.done = true;
  } else if (c.p.F == 0 || c.p.N == 0) {
    c.face.fill_(-1);
    c.bary.zero_();
    c.depth.zero_();
    c.done = true;
  }
  return c;
}

InterpolateCall prepare_interpolate(const at::Tensor& attributes, const at::Tensor& face_index,
                                    const at::Tensor& bary, const at::Tensor& triangles,
                                    c10::DeviceType device) {
  check_device_type("interpolate", "attributes", attributes, device);
  InterpolateCall c;
  c.triangles = check_interpolate(attributes, face_index, bary, triangles);
  const int64_t B = face_index.size(0), H = face_index.size(1), W = face_index.size(2);
  const int64_t C = attributes.size(2);
  c.out = at::empty({B, H, W, C}, attributes.options());
  c.done = c.out.numel() == 0;
  c.values = attributes.contiguous();
  c.face_index = face_index.contiguous();
  c.bary = bary.contiguous();
  c.p = raster::InterpParams{B, H * W, C, attributes.size(1), c.triangles.size(0),
                             attributes.size(0) == 1};
  return c;
}

InterpolateCall prepare_interpolate_backward(const at::Tensor& grad, const at::Tensor& face_index,
                                             const at::Tensor& bary, const at::Tensor& triangles,
                                             int64_t num_vertices, bool broadcast,
                                             c10::DeviceType device) {
  check_device_type("_interpolate_backward", "grad", grad, device);
  InterpolateCall c;
  c.triangles = check_interpolate_backward(grad, face_index, bary, triangles, num_vertices);
  const int64_t B = face_index.size(0), H = face_index.size(1), W = face_index.size(2);
  const int64_t C = grad.size(3);
  c.out = at::empty({broadcast ? 1 : B, num_vertices, C}, grad.options());
  if (c.out.numel() == 0) {
    c.done = true;
  } else if (B * H * W == 0 || c.triangles.size(0) == 0) {
    c.out.zero_();
    c.done = true;
  }
  c.values = grad.contiguous();
  c.face_index = face_index.contiguous();
  c.bary = bary.contiguous();
  c.p = raster::InterpParams{B, H * W, C, num_vertices, c.triangles.size(0), broadcast};
  return c;
}

}  // namespace raster_ops
}  // namespace pf3d

TORCH_LIBRARY_FRAGMENT(pyface3d, m) {
  m.def("rasterize(Tensor vertices, Tensor triangles, int height, int width, int x0=0, "
        "int y0=0) -> (Tensor, Tensor, Tensor)");
  m.def("interpolate(Tensor attributes, Tensor face_index, Tensor bary, Tensor triangles) "
        "-> Tensor");
  m.def("_interpolate_backward(Tensor grad, Tensor face_index, Tensor bary, Tensor triangles, "
        "int num_vertices, bool broadcast) -> Tensor");
}
