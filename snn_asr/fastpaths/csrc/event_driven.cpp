// The event-driven streaming layer (snn_asr/event_driven.py), compiled.
//
// One call runs frames x (time, in) through one layer at batch 1 as the numba kernel
// _run_layer does, float op for float op (built with -ffp-contract=off): per frame the gate
// pre-activations z start from the folded bias and add one row of W'^T per non-zero input
// and (v2) one row of U^T per non-zero previous spike, in index order; then the gates, the
// voltage and the spikes. Reading those rows is the cost (megabytes a frame at the paper's
// size), so each frame splits the neurons over torch's threads (at::parallel_for). The
// columns are gate-interleaved (neuron h's gates at h * gates + g), so a thread's share of
// each row is one contiguous run; it adds four rows per pass over its share of z, in their
// order, and then updates its neurons. The non-zero inputs and spikes are listed first,
// because the threads overwrite the spikes.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include "spike_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace snn_asr {
namespace {

constexpr int64_t kGrain = 64;  // neurons per thread at least: smaller layers run on one thread

// z += f[0] r[0] + ... + f[3] r[3] over m columns, added one row after the other (the same
// roundings as four passes of one row each), with z read and written once. Arguments by
// value, so that GCC vectorizes it (see spike_ops.h).
template <typename T>
void add_four_rows(T* __restrict__ z, const T* __restrict__ r0, const T* __restrict__ r1, const T* __restrict__ r2,
                   const T* __restrict__ r3, T f0, T f1, T f2, T f3, int64_t m) {
  for (int64_t k = 0; k < m; ++k) {
    T sum = z[k];
    sum = sum + f0 * r0[k];
    sum = sum + f1 * r1[k];
    sum = sum + f2 * r2[k];
    sum = sum + f3 * r3[k];
    z[k] = sum;
  }
}

template <typename T>
void add_row(T* __restrict__ z, const T* __restrict__ row, T factor, int64_t m) {
  for (int64_t k = 0; k < m; ++k) z[k] = z[k] + factor * row[k];
}

template <typename T>
void event_loop(int64_t kind, int64_t bits, const at::Tensor& p_t, const at::Tensor& x_t, const at::Tensor& wt_t,
                const at::Tensor& bias_t, const at::Tensor& ut_t, const at::Tensor& leak_t, const at::Tensor& cur_t,
                const at::Tensor& v_t, const at::Tensor& y_t, const at::Tensor& z_t, const at::Tensor& out_t,
                const at::Tensor& events_t) {
  const Constants<T> p(p_t);
  const int64_t time = x_t.size(0), inputs = x_t.size(1), hidden = v_t.size(0), width = bias_t.size(0);
  const int64_t gates = width / hidden;  // lif 1; v1, v2 2 (forget gate, input)
  const T *x = x_t.data_ptr<T>(), *wt = wt_t.data_ptr<T>(), *bias = bias_t.data_ptr<T>();
  const T* ut = kind == V2 ? ut_t.data_ptr<T>() : nullptr;
  const T* leak = kind == LIF ? leak_t.data_ptr<T>() : nullptr;
  T *cur = cur_t.data_ptr<T>(), *v = v_t.data_ptr<T>(), *y = y_t.data_ptr<T>(), *z = z_t.data_ptr<T>();
  T* out = out_t.data_ptr<T>();
  int64_t* events = events_t.data_ptr<int64_t>();
  const T zero = p.zero, one = p.one, scale = p.scale;
  std::vector<const T*> rows(inputs + hidden);  // this frame's rows to add, and their factors
  std::vector<T> factors(inputs + hidden);

  for (int64_t n = 0; n < time; ++n) {
    int64_t count = 0;
    for (int64_t j = 0; j < inputs; ++j) {
      const T xj = x[n * inputs + j];
      if (xj != zero) rows[count] = wt + j * width, factors[count++] = xj;
    }
    if (kind == V2) {
      for (int64_t j = 0; j < hidden; ++j) {
        if (y[j] != zero) rows[count] = ut + j * width, factors[count++] = y[j];
      }
    }
    events[0] += count;
    at::parallel_for(0, hidden, kGrain, [&](int64_t first, int64_t last) {
      const int64_t c0 = first * gates, m = (last - first) * gates;
      T* zs = z + c0;
      std::copy(bias + c0, bias + c0 + m, zs);
      const T* const* r = rows.data();
      const T* f = factors.data();
      int64_t c = 0;
      for (; c + 4 <= count; c += 4) {
        add_four_rows(zs, r[c] + c0, r[c + 1] + c0, r[c + 2] + c0, r[c + 3] + c0, f[c], f[c + 1], f[c + 2], f[c + 3],
                      m);
      }
      for (; c < count; ++c) add_row(zs, r[c] + c0, f[c], m);
      for (int64_t h = first; h < last; ++h) {
        if (kind == LIF) {
          cur[h] = leak[h] * cur[h] + z[h];
        } else {
          const T gate = one / (one + std::exp(-z[2 * h])), c_in = z[2 * h + 1];
          cur[h] = gate * cur[h] + (one - gate) * (c_in < zero ? zero : c_in);  // max(c, 0)
        }
        v[h] = v[h] + cur[h] - y[h];
      }
      quantize(v + first, scale, bits, p, y + first, last - first);
      std::copy(y + first, y + last, out + n * hidden + first);
    });
  }
}

}  // namespace

void event_layer(int64_t kind, int64_t bits, const at::Tensor& p, const at::Tensor& x, const at::Tensor& wt,
                 const at::Tensor& bias, const at::Tensor& ut, const at::Tensor& leak, const at::Tensor& current,
                 const at::Tensor& voltage, const at::Tensor& spikes, const at::Tensor& z, const at::Tensor& out,
                 const at::Tensor& events) {
  check_contiguous({&p, &x, &wt, &bias, &ut, &leak, &current, &voltage, &spikes, &z, &out, &events});
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "snn_asr_event_layer", [&] {
    event_loop<scalar_t>(kind, bits, p, x, wt, bias, ut, leak, current, voltage, spikes, z, out, events);
  });
}

}  // namespace snn_asr
