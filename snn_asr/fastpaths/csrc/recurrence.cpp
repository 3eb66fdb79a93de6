// The time loops of the fused recurrence (snn_asr/fused.py), compiled.
//
// One call runs a layer's whole forward (or backward) loop: per frame the same torch ops
// as the Python loop (oneDNN's U product, the add, the sigmoid) and the frame kernel, which
// repeats the numba kernels' float operations in their order (built with
// -ffp-contract=off, so no fused multiply-adds), split over batch rows with
// at::parallel_for, torch's own thread pool. Python's per-frame dispatch goes away and
// the memory-bound kernels get both cores. Results are bit-identical to the numba
// kernels, and so to the reference forward (tests/test_fused.py).
#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include "spike_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

using snn_asr::check_contiguous;
using snn_asr::Constants;
using snn_asr::LIF;
using snn_asr::max_abs;
using snn_asr::quantize;
using snn_asr::V1;
using snn_asr::V2;

// x W^T as snn_asr.linear.matmul_nt: oneDNN's linear where it applies, torch.mm elsewhere.
at::Tensor matmul_nt(const at::Tensor& x, const at::Tensor& weight, bool onednn) {
  if (!onednn) return at::mm(x, weight.t());
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mkldnn::_linear_pointwise", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                         c10::string_view, c10::List<std::optional<at::Scalar>>,
                                         std::optional<c10::string_view>)>();
  return op.call(x, weight, std::nullopt, "none", c10::List<std::optional<at::Scalar>>(), "");
}

// Frame n's first pass over row b: I[n], the voltage before firing (into volt); returns max |V|.
template <typename T>
T integrate_row(int64_t kind, int64_t hidden, const T* __restrict__ i_prev, const T* __restrict__ g,
                const T* __restrict__ m, const T* __restrict__ f, const T* __restrict__ leak,
                const T* __restrict__ vb, const T* __restrict__ yb, T* __restrict__ cur, T* __restrict__ volt,
                T* __restrict__ f_keep, T* __restrict__ c_keep, T zero, T one) {
  if (kind == LIF) {
    for (int64_t h = 0; h < hidden; ++h) cur[h] = leak[h] * i_prev[h] + g[h] * m[h];
  } else {
    for (int64_t h = 0; h < hidden; ++h) f_keep[h] = f[h];
    for (int64_t h = 0; h < hidden; ++h) {
      const T c = g[hidden + h];
      c_keep[h] = c < zero ? zero : c;  // max(c, 0)
    }
    for (int64_t h = 0; h < hidden; ++h) cur[h] = f[h] * i_prev[h] + (one - f[h]) * (c_keep[h] * m[h]);
  }
  for (int64_t h = 0; h < hidden; ++h) volt[h] = vb[h] + cur[h] - yb[h];
  return max_abs(volt, hidden, zero);
}

// Frame n's second pass over a valid row: the straight-through mask, V[n] and the spikes Y[n].
template <typename T>
void fire_row(int64_t hidden, int64_t bits, const Constants<T>& p, T scale, T* __restrict__ o,
              T* __restrict__ vb, T* __restrict__ yb, uint8_t* __restrict__ keep) {
  for (int64_t h = 0; h < hidden; ++h) {
    keep[h] = std::abs(o[h]) <= scale;
    vb[h] = o[h];
  }
  quantize(vb, scale, bits, p, yb, hidden);
  for (int64_t h = 0; h < hidden; ++h) o[h] = yb[h];
}

// Reverse of frame n for a valid row (snn_asr.fused._backward_frame): dL/d gates into gf, and
// dL/d(I, V, Y) moved to before the frame; lif leaves dL/d tau's term in terms.
template <typename T>
void backward_row(int64_t kind, int64_t hidden, const T* __restrict__ go, const T* __restrict__ rb,
                  const uint8_t* __restrict__ keep, const T* __restrict__ i_prev, const T* __restrict__ m,
                  const T* __restrict__ leak, const T* __restrict__ f_n, const T* __restrict__ c_n,
                  T* __restrict__ g_cur, T* __restrict__ gvb, T* __restrict__ gyb, T* __restrict__ gf,
                  T* __restrict__ terms, T zero, T one, T reset) {
  for (int64_t h = 0; h < hidden; ++h) {
    const T through = gyb[h] + rb[h] + go[h];  // straight through where |V| <= M
    gvb[h] = gvb[h] + (keep[h] ? through : zero);
  }
  for (int64_t h = 0; h < hidden; ++h) {
    gyb[h] = -(gvb[h] * reset);  // reset 1 (exact), or 0: a detached reset
    g_cur[h] = g_cur[h] + gvb[h];
  }
  if (kind == LIF) {
    for (int64_t h = 0; h < hidden; ++h) {
      terms[h] = g_cur[h] * i_prev[h];
      gf[h] = g_cur[h] * m[h];
    }
    for (int64_t h = 0; h < hidden; ++h) g_cur[h] = g_cur[h] * leak[h];
    return;
  }
  for (int64_t h = 0; h < hidden; ++h) gf[h] = g_cur[h] * (i_prev[h] - c_n[h] * m[h]) * (one - f_n[h]) * f_n[h];
  for (int64_t h = 0; h < hidden; ++h) {
    const T through = g_cur[h] * (one - f_n[h]) * m[h];
    gf[hidden + h] = c_n[h] > zero ? through : zero;
  }
  for (int64_t h = 0; h < hidden; ++h) g_cur[h] = g_cur[h] * f_n[h];
}

template <typename T>
void forward_loop(int64_t kind, bool per_frame, int64_t bits, const at::Tensor& p_t, const at::Tensor& corr_t,
                  const at::Tensor& ema_t, const at::Tensor& updates_t, const at::Tensor& scales_t,
                  const at::Tensor& tops_t, const at::Tensor& drive, const at::Tensor& u, const at::Tensor& gates,
                  const at::Tensor& forget_t, const at::Tensor& levels_t, const at::Tensor& levels_all_t,
                  const at::Tensor& leak_t, const at::Tensor& mask_t, const at::Tensor& valid_t,
                  const at::Tensor& i0_t, const at::Tensor& current_t, const at::Tensor& v_t, const at::Tensor& y_t,
                  const at::Tensor& out_t, const at::Tensor& f_all_t, const at::Tensor& c_all_t,
                  const at::Tensor& st_t, bool keep_all, bool onednn) {
  const Constants<T> p(p_t);
  const int64_t batch = drive.size(0), time = drive.size(1), width = drive.size(2), hidden = i0_t.size(1);
  const T zero = p.zero, one = p.one;
  const T *corr = corr_t.data_ptr<T>(), *forget = forget_t.data_ptr<T>(), *mask = mask_t.data_ptr<T>();
  const T *i0 = i0_t.data_ptr<T>(), *leak = kind == LIF ? leak_t.data_ptr<T>() : nullptr;
  const bool* valid = valid_t.data_ptr<bool>();
  T *ema = ema_t.data_ptr<T>(), *scales = scales_t.data_ptr<T>(), *current = current_t.data_ptr<T>();
  T* tops_out = tops_t.data_ptr<T>();  // each frame's max |V| over valid rows
  T *v = v_t.data_ptr<T>(), *y = y_t.data_ptr<T>(), *out = out_t.data_ptr<T>();
  T *f_all = f_all_t.data_ptr<T>(), *c_all = c_all_t.data_ptr<T>(), *levels = levels_t.data_ptr<T>();
  T* levels_all = levels_all_t.data_ptr<T>();
  uint8_t* st = reinterpret_cast<uint8_t*>(st_t.data_ptr<bool>());  // bytes: GCC vectorizes no bool loads
  int64_t* updates = updates_t.data_ptr<int64_t>();
  const int64_t saved_levels = levels_all_t.size(1);
  // gates[b] of frame n: the v2 buffer (batch, 1, 2 hidden), or the drive itself
  const T* gate_base = kind == V2 ? gates.data_ptr<T>() : drive.data_ptr<T>();
  const int64_t gate_row = kind == V2 ? 2 * hidden : time * width;
  at::Tensor gates_now, gates_f, forget_out = forget_t;  // non-const handles for the out= ops
  if (kind == V2) gates_now = gates.select(1, 0), gates_f = gates_now.narrow(1, 0, hidden);
  std::vector<T> tops(batch);

  for (int64_t n = 0; n < time; ++n) {
    if (kind == V2) {
      at::add_out(gates_now, drive.select(1, n), matmul_nt(levels_t, u, onednn));
      at::sigmoid_out(forget_out, gates_f);
    } else if (kind == V1) {
      at::sigmoid_out(forget_out, drive.select(1, n).narrow(1, 0, hidden));
    }
    const int64_t ns = keep_all ? n : 0, ls = keep_all ? n + 1 : 0, gn = kind == V2 ? 0 : n * width;
    at::parallel_for(0, batch, 1, [&](int64_t first, int64_t last) {
      for (int64_t b = first; b < last; ++b) {
        tops[b] = zero;
        if (!valid[b * time + n]) continue;
        const int64_t row = b * hidden, kept = (ns * batch + b) * hidden;
        tops[b] = integrate_row(kind, hidden, n == 0 ? i0 + row : current + (n - 1) * batch * hidden + row,
                                gate_base + b * gate_row + gn, mask + row, forget + row, leak, v + row, y + row,
                                current + n * batch * hidden + row, out + (b * time + n) * hidden, f_all + kept,
                                c_all + kept, zero, one);
      }
    });
    T top = zero;
    bool any_valid = false;
    for (int64_t b = 0; b < batch; ++b) {
      if (!valid[b * time + n]) continue;
      any_valid = true;
      top = std::max(top, tops[b]);
    }
    tops_out[n] = top;
    T scale;
    if (per_frame && any_valid) {
      ema[0] = ema[0] * p.momentum + p.rest * top;
      scale = std::max(ema[0] / corr[updates[0]], p.min_scale);
      updates[0] += 1;
      scales[n + 1] = scale;
    } else {
      scale = p.scale;
      scales[n + 1] = scales[n];
    }
    at::parallel_for(0, batch, 1, [&](int64_t first, int64_t last) {
      for (int64_t b = first; b < last; ++b) {
        const int64_t row = b * hidden;
        T *yb = y + row, *o = out + (b * time + n) * hidden;
        if (valid[b * time + n]) {
          fire_row(hidden, bits, p, scale, o, v + row, yb, st + (ns * batch + b) * hidden);
        } else {
          const T* previous = n == 0 ? i0 + row : current + (n - 1) * batch * hidden + row;
          std::copy(previous, previous + hidden, current + n * batch * hidden + row);
          for (int64_t h = 0; h < hidden; ++h) o[h] = yb[h] * zero;
        }
        if (kind == V2) {
          T* lb = levels + row;
          for (int64_t h = 0; h < hidden; ++h) lb[h] = yb[h] / scales[n + 1];
          std::copy(lb, lb + hidden, levels_all + (b * saved_levels + ls) * hidden);
        }
      }
    });
  }
}

template <typename T>
void backward_loop(int64_t kind, const at::Tensor& p_t, const at::Tensor& gout_t, const at::Tensor& rec_t,
                   const at::Tensor& gi_t, const at::Tensor& gv_t, const at::Tensor& gy_t, const at::Tensor& leak_t,
                   const at::Tensor& gleak_t, const at::Tensor& mask_t, const at::Tensor& valid_t,
                   const at::Tensor& i0_t, const at::Tensor& current_t, const at::Tensor& f_all_t,
                   const at::Tensor& c_all_t, const at::Tensor& st_t, const at::Tensor& gdrive_t,
                   const at::Tensor& gframe_t, const at::Tensor& ut, const at::Tensor& scales, bool onednn) {
  const Constants<T> p(p_t);
  const int64_t time = current_t.size(0), batch = current_t.size(1), hidden = current_t.size(2);
  const int64_t width = gframe_t.size(1);
  const T zero = p.zero, one = p.one;
  const T *gout = gout_t.data_ptr<T>(), *rec = rec_t.data_ptr<T>(), *mask = mask_t.data_ptr<T>();
  const T *i0 = i0_t.data_ptr<T>(), *current = current_t.data_ptr<T>();
  const T *f_all = f_all_t.data_ptr<T>(), *c_all = c_all_t.data_ptr<T>();
  const T* leak = kind == LIF ? leak_t.data_ptr<T>() : nullptr;
  T* gleak = kind == LIF ? gleak_t.data_ptr<T>() : nullptr;
  const bool* valid = valid_t.data_ptr<bool>();
  const uint8_t* st = reinterpret_cast<const uint8_t*>(st_t.data_ptr<bool>());  // bytes, as in forward_loop
  T *gi = gi_t.data_ptr<T>(), *gv = gv_t.data_ptr<T>(), *gy = gy_t.data_ptr<T>();
  T *gdrive = gdrive_t.data_ptr<T>(), *gframe = gframe_t.data_ptr<T>();
  // lif: each row's dL/d tau term, summed over rows in order after the parallel part (as the numba kernel sums)
  std::vector<T> leak_terms(kind == LIF ? batch * hidden : 0);
  at::Tensor rec_out = rec_t;  // a non-const handle for div_out

  for (int64_t n = time - 1; n >= 0; --n) {
    at::parallel_for(0, batch, 1, [&](int64_t first, int64_t last) {
      for (int64_t b = first; b < last; ++b) {
        const int64_t row = b * hidden, saved = (n * batch + b) * hidden;
        T *gf = gframe + b * width, *gd = gdrive + (b * time + n) * width;
        if (!valid[b * time + n]) {
          for (int64_t h = 0; h < hidden; ++h) gy[row + h] += rec[row + h];
          std::fill(gf, gf + width, zero);
          std::fill(gd, gd + width, zero);
          continue;
        }
        backward_row(kind, hidden, gout + (b * time + n) * hidden, rec + row, st + saved,
                     n == 0 ? i0 + row : current + saved - batch * hidden, mask + row, leak, f_all + saved,
                     c_all + saved, gi + row, gv + row, gy + row, gf, kind == LIF ? leak_terms.data() + row : nullptr,
                     zero, one, p.reset);
        std::copy(gf, gf + width, gd);
      }
    });
    if (kind == LIF) {
      for (int64_t b = 0; b < batch; ++b) {
        if (!valid[b * time + n]) continue;
        const T* terms = leak_terms.data() + b * hidden;
        for (int64_t h = 0; h < hidden; ++h) gleak[h] += terms[h];
      }
    } else if (kind == V2) {
      at::div_out(rec_out, matmul_nt(gframe_t, ut, onednn), scales.select(0, n));
    }
  }
}

void forward(int64_t kind, bool per_frame, int64_t bits, const at::Tensor& p, const at::Tensor& corr,
             const at::Tensor& ema, const at::Tensor& updates, const at::Tensor& scales, const at::Tensor& tops,
             const at::Tensor& drive, const at::Tensor& u, const at::Tensor& gates, const at::Tensor& forget,
             const at::Tensor& levels, const at::Tensor& levels_all, const at::Tensor& leak, const at::Tensor& mask,
             const at::Tensor& valid, const at::Tensor& i0, const at::Tensor& current, const at::Tensor& v,
             const at::Tensor& y, const at::Tensor& out, const at::Tensor& f_all, const at::Tensor& c_all,
             const at::Tensor& st, bool keep_all, bool onednn) {
  check_contiguous({&p, &corr, &ema, &updates, &scales, &tops, &drive, &gates, &forget, &levels, &levels_all, &leak,
                    &mask, &valid, &i0, &current, &v, &y, &out, &f_all, &c_all, &st});
  AT_DISPATCH_FLOATING_TYPES(drive.scalar_type(), "snn_asr_forward", [&] {
    forward_loop<scalar_t>(kind, per_frame, bits, p, corr, ema, updates, scales, tops, drive, u, gates, forget,
                           levels, levels_all, leak, mask, valid, i0, current, v, y, out, f_all, c_all, st, keep_all,
                           onednn);
  });
}

void backward(int64_t kind, const at::Tensor& p, const at::Tensor& gout, const at::Tensor& rec,
              const at::Tensor& gi, const at::Tensor& gv, const at::Tensor& gy, const at::Tensor& leak,
              const at::Tensor& gleak, const at::Tensor& mask, const at::Tensor& valid, const at::Tensor& i0,
              const at::Tensor& current, const at::Tensor& f_all, const at::Tensor& c_all, const at::Tensor& st,
              const at::Tensor& gdrive, const at::Tensor& gframe, const at::Tensor& ut, const at::Tensor& scales,
              bool onednn) {
  check_contiguous({&p, &gout, &rec, &gi, &gv, &gy, &leak, &gleak, &mask, &valid, &i0, &current, &f_all, &c_all, &st,
                    &gdrive, &gframe, &scales});
  AT_DISPATCH_FLOATING_TYPES(current.scalar_type(), "snn_asr_backward", [&] {
    backward_loop<scalar_t>(kind, p, gout, rec, gi, gv, gy, leak, gleak, mask, valid, i0, current, f_all, c_all,
                            st, gdrive, gframe, ut, scales, onednn);
  });
}

}  // namespace

namespace snn_asr {
void event_layer(int64_t kind, int64_t bits, const at::Tensor& p, const at::Tensor& x, const at::Tensor& wt,
                 const at::Tensor& bias, const at::Tensor& ut, const at::Tensor& leak, const at::Tensor& current,
                 const at::Tensor& voltage, const at::Tensor& spikes, const at::Tensor& z, const at::Tensor& out,
                 const at::Tensor& events);  // event_driven.cpp
}  // namespace snn_asr

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "A layer's forward time loop (snn_asr.fused)");
  m.def("backward", &backward, "A layer's backward time loop (snn_asr.fused)");
  m.def("event_layer", &snn_asr::event_layer, "Frames through one event-driven layer (snn_asr.event_driven)");
}
