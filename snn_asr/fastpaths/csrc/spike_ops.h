// What the compiled loops (recurrence.cpp, event_driven.cpp) share: the neuron kinds, the
// constants of snn_asr.fused._constants and the row kernels of the spike function
// (snn_asr.fused._quantize), float op for float op.
#pragma once

#include <torch/extension.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>

namespace snn_asr {

constexpr int64_t LIF = 0, V1 = 1, V2 = 2;  // snn_asr.fused's kinds

// The loops read and write through raw pointers: every tensor they index must be contiguous.
inline void check_contiguous(std::initializer_list<const at::Tensor*> tensors) {
  for (const at::Tensor* t : tensors) TORCH_CHECK(t->is_contiguous(), "snn_asr: the compiled loops need contiguous tensors");
}

template <typename T>
struct Constants {  // snn_asr.fused._constants, in its order
  T momentum, rest, levels, threshold, scale, min_scale, zero, one, two, reset, floor;
  explicit Constants(const at::Tensor& p) {
    const T* v = p.data_ptr<T>();
    momentum = v[0], rest = v[1], levels = v[2], threshold = v[3], scale = v[4];
    min_scale = v[5], zero = v[6], one = v[7], two = v[8], reset = v[9], floor = v[10];
  }
};

// Row kernels. Their arguments are values, not captured references, so that GCC can prove
// the stores alias no loop bound or constant, and vectorizes every loop over a row (checked
// with -fopt-info-vec). Each repeats numba's float operations in their order; the selects keep
// their first argument on ties and NaN, as Python's min/max do in numba.

// max(top, |v|) over a row, as numba's sequential loop (which skips NaN, like Python's max),
// in 16 lanes so that it vectorizes: max is exact, so the order does not matter.
template <typename T>
T max_abs(const T* __restrict__ v, int64_t hidden, T zero) {
  constexpr int64_t kLanes = 16;
  T lanes[kLanes];
  for (int64_t k = 0; k < kLanes; ++k) lanes[k] = zero;
  int64_t h = 0;
  for (; h + kLanes <= hidden; h += kLanes) {
    for (int64_t k = 0; k < kLanes; ++k) {
      const T a = std::abs(v[h + k]);
      lanes[k] = lanes[k] < a ? a : lanes[k];
    }
  }
  T top = zero;
  for (int64_t k = 0; k < kLanes; ++k) top = top < lanes[k] ? lanes[k] : top;
  for (; h < hidden; ++h) {
    const T a = std::abs(v[h]);
    top = top < a ? a : top;
  }
  return top;
}

// snn_asr.fused._quantize: the multi-bit spike of one row.
template <typename T>
void quantize(const T* __restrict__ v, T scale, int64_t bits, const Constants<T>& p, T* __restrict__ out,
              int64_t hidden) {
  const T zero = p.zero;
  if (bits == 1) {
    const T theta = scale / p.two;
    for (int64_t h = 0; h < hidden; ++h) out[h] = v[h] >= theta ? theta : zero;
    return;
  }
  const T s = (p.one / scale) * p.levels, threshold = p.threshold;
  const T bottom = p.floor * scale;  // -scale (floor -1, exact), or 0: the unsigned code
  for (int64_t h = 0; h < hidden; ++h) {
    const T x = v[h], low = scale < x ? scale : x;  // min(x, scale), then max(., bottom)
    const T q = std::trunc(s * (low < bottom ? bottom : low)), level = q / s;
    out[h] = std::abs(q) <= threshold ? zero : level;  // divided unconditionally: a select vectorizes
  }
}

}  // namespace snn_asr
