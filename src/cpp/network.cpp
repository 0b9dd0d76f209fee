// Network, LossSpec and UpdateRule: see network.hpp. Instantiated for float and double.
#include "network.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include <unistd.h>

#include "dense.hpp"
#include "losses.hpp"
#include "parallel.hpp"

namespace pycvnn {
namespace {

// The forward (Grad false: returns the reduced value; with Reduction::None it also writes
// the unreduced values to out) or the backward (Grad true: writes d loss / d pred to out) of
// spec's loss: the two kernels of a pair take the same arguments after their output, so one
// dispatch by kind serves value and grad.
template <bool Grad, typename T>
double loss_pass(const LossSpec& spec, T* out, const T* pred, const T* y, const std::int64_t* ids,
                 idx N, idx C, Reduction r = Reduction::Mean) {
    const auto pass = [&](auto forward, auto backward, auto... args) -> double {
        if constexpr (Grad) {
            backward(out, pred, args..., r);
            return 0;
        } else {
            return forward(r == Reduction::None ? out : static_cast<T*>(nullptr), pred, args..., r);
        }
    };
    const idx n = N * C;  // the elementwise losses' count
    const bool squared = spec.kind == LossKind::SquaredHinge;
    switch (spec.kind) {
        case LossKind::L1: return pass(l1_forward<T>, l1_backward<T>, y, n);
        case LossKind::L2: return pass(l2_forward<T>, l2_backward<T>, y, n);
        case LossKind::Huber: return pass(huber_forward<T>, huber_backward<T>, y, n, T(spec.delta));
        case LossKind::CrossEntropy: {
            // Overloaded on the target (class ids or probabilities): named through lambdas.
            const auto forward = [](auto... a) { return cross_entropy_forward<T>(a...); };
            const auto backward = [](auto... a) { cross_entropy_backward<T>(a...); };
            return ids ? pass(forward, backward, ids, N, C, spec.from_logits)
                       : pass(forward, backward, y, N, C, spec.from_logits);
        }
        case LossKind::BinaryCrossEntropy:
            return pass(binary_cross_entropy_forward<T>, binary_cross_entropy_backward<T>, y, n,
                        spec.from_logits);
        case LossKind::Hinge:
        case LossKind::SquaredHinge:
            return ids ? pass(hinge_multiclass_forward<T>, hinge_multiclass_backward<T>, ids, N, C,
                              squared)
                       : pass(hinge_binary_forward<T>, hinge_binary_backward<T>, y, n, squared);
        case LossKind::Dice:
            return pass(dice_forward<T>, dice_backward<T>, y, N, C, T(spec.smooth));
    }
    throw std::logic_error("unknown loss");
}

}  // namespace

// ---- LossSpec ------------------------------------------------------------------------------

template <typename T>
double LossSpec::value(const T* pred, const T* y, const std::int64_t* ids, idx N, idx C) const {
    return loss_pass<false, T>(*this, nullptr, pred, y, ids, N, C);
}

template <typename T>
void LossSpec::grad(T* dpred, const T* pred, const T* y, const std::int64_t* ids, idx N,
                    idx C) const {
    loss_pass<true, T>(*this, dpred, pred, y, ids, N, C);
}

template <typename T>
double LossSpec::value_and_grad(T* dpred, const T* pred, const T* y, const std::int64_t* ids, idx N,
                                idx C) const {
    if (kind == LossKind::CrossEntropy && ids && from_logits)
        return cross_entropy_value_and_grad(dpred, pred, ids, N, C);
    const double v = value(pred, y, ids, N, C);
    if (std::isfinite(v)) grad(dpred, pred, y, ids, N, C);
    return v;
}

idx LossSpec::values_per_row(bool with_ids, idx C) const {
    const bool elementwise =
        kind == LossKind::L1 || kind == LossKind::L2 || kind == LossKind::Huber ||
        kind == LossKind::BinaryCrossEntropy ||
        ((kind == LossKind::Hinge || kind == LossKind::SquaredHinge) && !with_ids);
    return elementwise ? C : 1;
}

template <typename T>
double LossSpec::weighted_value_and_grad(T* dpred, T* scratch, const T* pred, const T* y,
                                         const std::int64_t* ids, const T* w, idx N, idx C) const {
    loss_pass<false, T>(*this, scratch, pred, y, ids, N, C, Reduction::None);
    const idx k = values_per_row(ids != nullptr, C);
    double total = 0, w_sum = 0;
    for (idx i = 0; i < N; ++i) {
        double row = 0;
        for (idx j = 0; j < k; ++j) row += double(scratch[i * k + j]);
        total += double(w[i]) * row;
        w_sum += double(w[i]);
    }
    // A batch of no weight adds nothing: a zero loss and a zero gradient.
    const double norm = w_sum > 0 ? 1.0 / (w_sum * double(k)) : 0.0;
    const double v = total * norm;
    if (!std::isfinite(v)) return v;
    loss_pass<true, T>(*this, dpred, pred, y, ids, N, C, Reduction::Sum);
    for (idx i = 0; i < N; ++i) {
        const T scale = T(double(w[i]) * norm);
        for (idx j = 0; j < C; ++j) dpred[i * C + j] *= scale;
    }
    return v;
}

// ---- UpdateRule ----------------------------------------------------------------------------

template <typename T>
T UpdateRule::clip_scale(const T* grads, idx n) const {
    if (clip_norm <= 0) return T(1);
    const double norm = global_norm(grads, n);  // the whole gradient: before any split
    return norm > clip_norm ? T(clip_norm / norm) : T(1);
}

// Every rule is elementwise: a slice is updated on its own.
template <typename T>
void UpdateRule::apply(T* params, T* grads, T* state1, T* state2, idx lo, idx hi, idx n_decay,
                       T clip, double lr, long long t) const {
    const T wd = T(weight_decay), lr_ = T(lr);
    T* p = params + lo;
    T* g = grads + lo;
    T* s1 = state1 ? state1 + lo : nullptr;
    T* s2 = state2 ? state2 + lo : nullptr;
    const idx len = hi - lo, nd = std::max<idx>(0, std::min(hi, n_decay) - lo);  // weights
    if (len <= 0) return;
    if (clip != T(1)) scale_inplace(g, clip, len);
    if (weight_decay > 0 && rule != Rule::AdamW && nd > 0) add_weight_decay(g, p, wd, nd);
    switch (rule) {
        case Rule::GD: gd_update(p, g, lr_, len); break;
        case Rule::Momentum: momentum_update(p, s1, g, lr_, beta, form, nesterov, len); break;
        case Rule::RMSProp: rmsprop_update(p, s1, g, lr_, rho, T(eps), len); break;
        case Rule::Adam: adam_update(p, s1, s2, g, lr_, beta1, beta2, T(eps), t, len); break;
        case Rule::AdamW:  // decoupled decay on the weights, none on the biases
            if (nd > 0) adamw_update(p, s1, s2, g, lr_, beta1, beta2, T(eps), t, wd, nd);
            if (len > nd)
                adamw_update(p + nd, s1 + nd, s2 + nd, g + nd, lr_, beta1, beta2, T(eps), t, T(0),
                             len - nd);
            break;
    }
}

template <typename T>
void UpdateRule::step(T* params, T* grads, T* state1, T* state2, idx n, idx n_decay, double lr,
                      long long t) const {
    if (n == 0) return;
    const T clip = clip_scale(grads, n);
    // At least 64k parameters a thread, so a thread's share of the update repays handing it
    // out, and mid-sized networks such as mnist's are still split.
    Pool::instance().parallel_for(n, idx(1) << 16, [&](idx lo, idx hi) {
        apply(params, grads, state1, state2, lo, hi, n_decay, clip, lr, t);
    });
}

// ---- Network -------------------------------------------------------------------------------

template <typename T>
Network<T>::Network(std::vector<Op> ops) : ops_(std::move(ops)) {
    if (ops_.empty()) throw std::invalid_argument("ops: expected at least one op");
    for (const Op& op : ops_) {
        if (op.dense) n_decay_ += op.in * op.out;
        max_width_ = std::max({max_width_, op.in, op.out});
    }
    idx w = 0, b = n_decay_;
    for (Op& op : ops_) {
        if (!op.dense) continue;
        op.w_off = w;
        op.b_off = b;
        w += op.in * op.out;
        b += op.out;
    }
    n_params_ = b;
    out_.resize(ops_.size());
    pre_.resize(ops_.size());
}

template <typename T>
void Network<T>::reserve(idx N, bool backward) {
    if (N > out_rows_) {
        out_rows_ = N;
        for (size_t i = 0; i < ops_.size(); ++i) {
            out_[i].resize(size_t(N * ops_[i].out));
            if (ops_[i].dense && needs_input(ops_[i].act)) pre_[i].resize(size_t(N * ops_[i].out));
        }
    }
    if (!backward || N <= grad_rows_) return;
    grad_rows_ = N;
    grad_a_.resize(size_t(N * max_width_));
    grad_b_.resize(size_t(N * max_width_));
    dz_.resize(size_t(N * max_width_));
    xb_.resize(size_t(N * in_features()));
    yb_.resize(size_t(N * out_features()));
}

template <typename T>
const T* Network<T>::forward(const T* params, const T* x, idx N) {
    reserve(N, false);
    input_ = x;
    const T* in = x;
    for (size_t i = 0; i < ops_.size(); ++i) {
        const Op& op = ops_[i];
        T* out = out_[i].data();
        if (op.dense)
            dense_forward(out, in, params + op.w_off, params + op.b_off, N, op.in, op.out, op.act,
                          T(op.alpha), pre_[i].data());
        else
            activation_forward(out, in, N, op.out, op.act, T(op.alpha));
        in = out;
    }
    return in;
}

template <typename T>
const T* Network<T>::backward(const T* params, T* grads, const T* dout, idx N, bool need_dx) {
    reserve(N, true);
    // Without folding params are only read.
    return backward_impl(const_cast<T*>(params), grads, dout, N, need_dx, 0, 0);
}

template <typename T>
const T* Network<T>::backward_impl(T* params, T* grads, const T* dout, idx N, bool need_dx,
                                   double fold_gd_lr, double weight_decay) {
    T* bufs[2] = {grad_a_.data(), grad_b_.data()};
    int next = dout == bufs[0] ? 1 : 0;  // never write over the gradient being read
    const T* g = dout;
    const bool fold = fold_gd_lr > 0;
    T* dst = fold ? params : grads;  // where dw, db go
    const T g_scale = fold ? T(-fold_gd_lr) : T(1);
    const T dw_keep = fold ? T(1.0 - fold_gd_lr * weight_decay) : T(0);
    const T db_keep = fold ? T(1) : T(0);
    bool gated = false;  // g is already dz: ReLU's backward was done in the GEMM above
    for (size_t k = ops_.size(); k-- > 0;) {
        const Op& op = ops_[k];
        const bool want_dx = k > 0 || need_dx;
        T* dx = want_dx ? bufs[next] : nullptr;
        const T* x = k > 0 ? out_[k - 1].data() : input_;
        // A dense ReLU layer below: its backward goes into this layer's dx GEMM.
        const bool gate = k > 0 && ops_[k - 1].dense && ops_[k - 1].act == Activation::ReLU;
        if (op.dense)
            gated = dense_backward(dx, dst + op.w_off, dst + op.b_off, dz_.data(), g, x,
                                   params + op.w_off, out_[k].data(), pre_[k].data(), N, op.in,
                                   op.out, op.act, T(op.alpha), g_scale, dw_keep, db_keep,
                                   gate ? x : nullptr, gated);
        else if (want_dx)
            activation_backward_from_output(dx, out_[k].data(), x, g, N, op.out, op.act,
                                            T(op.alpha));
        if (!want_dx) return nullptr;
        g = dx;
        next ^= 1;
    }
    return g;
}

// Whether the order's first `rows` entries are consecutive rows: one run of the data in place.
static bool contiguous(const std::int64_t* order, idx rows) {
    for (idx r = 1; r < rows; ++r)
        if (order[r] != order[0] + r) return false;
    return true;
}

// Brings a batch of contiguous rows into cache while the step before it runs: when the data
// was last touched before other work (a data loader, another model), the batch would come
// from DRAM. Gathered (shuffled) rows are left alone, as prefetching them costs more than it
// saves, and big batches too: the hardware prefetcher keeps up with the GEMMs' streaming
// reads, and a prefetched batch would evict the step's weights.
template <typename T>
void Network<T>::prefetch_rows(const T* x, const T* y, const std::int64_t* ids, idx first,
                               idx rows) const {
    const idx in = in_features(), C = out_features();
    if (rows * (in + C) * idx(sizeof(T)) > (idx(1) << 17)) return;
    prefetch_lines(x + first * in, sizeof(T) * size_t(rows * in));
    if (y)
        prefetch_lines(y + first * C, sizeof(T) * size_t(rows * C));
    else
        prefetch_lines(ids, sizeof(std::int64_t) * size_t(rows));
}

// A core's L2 (2 MiB, this machine's, where sysconf does not say).
static std::size_t l2_bytes() {
    static const std::size_t bytes = [] {
        const long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
        return v > 0 ? std::size_t(v) : std::size_t(2) << 20;
    }();
    return bytes;
}

// Each thread updates the weight rows (and their biases) its GEMMs computed in this step
// (weight_rows_of), so no core re-reads rows another wrote: split as a flat arena instead,
// half the weights would move between cores twice a step wherever the GEMMs split otherwise
// or not at all. Where the GEMMs run on one thread the update does too, unless the weights
// are past L2 and stream from memory either way (wide, batch 8: split).
template <typename T>
void Network<T>::update(T* params, T* grads, T* state1, T* state2, idx N, double lr, long long t,
                        const UpdateRule& rule) const {
    bool owned = false;  // some layer's GEMMs were split
    for (const Op& op : ops_)
        owned = owned || (op.dense && weight_rows_of(N, op.in, op.out, 0).second < op.out);
    if (!owned && std::size_t(n_decay_) * sizeof(T) > l2_bytes())  // the arena split flat
        return rule.step(params, grads, state1, state2, n_params_, n_decay_, lr, t);
    const T clip = rule.clip_scale(grads, n_params_);
    const auto apply = [&](idx lo, idx hi) {
        rule.apply(params, grads, state1, state2, lo, hi, n_decay_, clip, lr, t);
    };
    if (!owned) return apply(0, n_params_);
    Pool& pool = Pool::instance();
    pool.parallel_for(
        pool.threads(), 1,
        [&](idx p0, idx p1) {
            for (idx p = p0; p < p1; ++p)
                for (const Op& op : ops_) {
                    if (!op.dense) continue;
                    const auto [r0, r1] = weight_rows_of(N, op.in, op.out, int(p));
                    apply(op.w_off + r0 * op.in, op.w_off + r1 * op.in);
                    apply(op.b_off + r0, op.b_off + r1);
                }
        },
        1);
}

template <typename T>
idx Network<T>::train_epoch(T* params, T* grads, T* state1, T* state2, const T* x, const T* y,
                            const std::int64_t* ids, const std::int64_t* order, const T* sw,
                            idx n_order, idx batch, double lr, long long t, const LossSpec& loss,
                            const UpdateRule& rule, double* losses,
                            const std::atomic<unsigned>* signals, unsigned signals_seen) {
    FlushDenormals ftz;      // one MXCSR write for the epoch, not one per kernel
    TrainingGemms training;  // small batches' GEMMs stay on this thread (gemm.hpp)
    const idx in = in_features(), C = out_features();
    batch = std::min(batch, n_order);  // start + batch below never overflows
    reserve(batch, true);
    if (sw && loss_rows_.size() < size_t(batch * C))  // only a weighted fit needs it
        loss_rows_.resize(size_t(batch * C));
    // Plain GD needs no separate update pass: w := (1 - lr wd) w - lr dz^T x in the GEMM.
    // Clipping needs the whole gradient first, so it keeps the general path.
    const bool fold_gd = rule.rule == Rule::GD && rule.clip_norm <= 0 && lr > 0;
    idx nb = 0;
    // Rows in order (no shuffle) are read in place; otherwise the batch is gathered into
    // contiguous rows for the GEMMs. Each batch is checked once, the step before it runs.
    bool in_place = n_order > 0 && contiguous(order, batch);
    for (idx start = 0; start < n_order; start += batch, ++nb) {
        if (signals && signals->load(std::memory_order_relaxed) != signals_seen) break;
        const idx rows = std::min(batch, n_order - start);
        const idx first = idx(order[start]);
        const T* xb = x + first * in;
        const T* yb = y ? y + first * C : nullptr;
        const std::int64_t* ib = y ? nullptr : ids + start;
        if (!in_place) {
            for (idx r = 0; r < rows; ++r) {
                const idx row = idx(order[start + r]);
                std::memcpy(&xb_[size_t(r * in)], x + row * in, sizeof(T) * size_t(in));
                if (y) std::memcpy(&yb_[size_t(r * C)], y + row * C, sizeof(T) * size_t(C));
            }
            xb = xb_.data();
            yb = y ? yb_.data() : nullptr;
        }
        const idx next = start + rows, next_rows = std::min(batch, n_order - next);
        const bool next_in_place = next_rows > 0 && contiguous(order + next, next_rows);
        if (next_in_place)
            prefetch_rows(x, y, y ? nullptr : ids + next, idx(order[next]), next_rows);
        const T* pred = forward(params, xb, rows);
        double value;
        if (sw) {
            value = loss.weighted_value_and_grad(grad_a_.data(), loss_rows_.data(), pred, yb, ib,
                                                 sw + start, rows, C);
        } else {
            value = loss.value_and_grad(grad_a_.data(), pred, yb, ib, rows, C);
        }
        losses[nb] = value;
        if (!std::isfinite(value)) return nb + 1;
        if (fold_gd) {  // the update happens inside the weight GEMMs
            backward_impl(params, grads, grad_a_.data(), rows, false, lr, rule.weight_decay);
        } else {
            backward(params, grads, grad_a_.data(), rows, false);
            update(params, grads, state1, state2, rows, lr, t + nb + 1, rule);
        }
        in_place = next_in_place;
    }
    return nb;
}

template class Network<float>;
template class Network<double>;
template double LossSpec::value<float>(const float*, const float*, const std::int64_t*, idx,
                                       idx) const;
template double LossSpec::value<double>(const double*, const double*, const std::int64_t*, idx,
                                        idx) const;
template void LossSpec::grad<float>(float*, const float*, const float*, const std::int64_t*, idx,
                                    idx) const;
template void LossSpec::grad<double>(double*, const double*, const double*, const std::int64_t*,
                                     idx, idx) const;
template double LossSpec::value_and_grad<float>(float*, const float*, const float*,
                                                const std::int64_t*, idx, idx) const;
template double LossSpec::value_and_grad<double>(double*, const double*, const double*,
                                                 const std::int64_t*, idx, idx) const;
template double LossSpec::weighted_value_and_grad<float>(float*, float*, const float*, const float*,
                                                         const std::int64_t*, const float*, idx,
                                                         idx) const;
template double LossSpec::weighted_value_and_grad<double>(double*, double*, const double*,
                                                          const double*, const std::int64_t*,
                                                          const double*, idx, idx) const;
template void UpdateRule::step<float>(float*, float*, float*, float*, idx, idx, double,
                                      long long) const;
template void UpdateRule::step<double>(double*, double*, double*, double*, idx, idx, double,
                                       long long) const;

}  // namespace pycvnn
