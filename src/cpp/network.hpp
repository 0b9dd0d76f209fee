// A network: ops over one flat parameter arena, a workspace reused across batches, and the
// whole training epoch (gather batch, forward, loss, backward, update) in one call.
// Mirrors pycvnn/reference/network.py. Arena layout (shared with pycvnn.model):
// [W1, ..., WL, b1, ..., bL], Wi (out_i, in_i) row-major; the first n_decay entries are the
// weights, the only entries weight decay touches.
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

#include "activations.hpp"
#include "common.hpp"
#include "optimizers.hpp"

namespace pycvnn {

// A Dense layer fused with the activation after it ("dense"), or a lone activation ("act").
struct Op {
    bool dense;
    idx in, out;
    Activation act;
    double alpha;
    idx w_off = 0, b_off = 0;  // into the arena, set by Network
};

enum class LossKind { L1, L2, Huber, CrossEntropy, BinaryCrossEntropy, Hinge, SquaredHinge, Dice };

// The losses by name: the bindings, the training core's LossSpec and their checks derive from
// this table. option: the one option the loss takes (its default is LossSpec's), or null.
struct LossInfo {
    const char* name;
    LossKind kind;
    const char* option;
};
inline constexpr LossInfo kLosses[] = {
    {"l1", LossKind::L1, nullptr},
    {"l2", LossKind::L2, nullptr},
    {"huber", LossKind::Huber, "delta"},
    {"cross_entropy", LossKind::CrossEntropy, "from_logits"},
    {"binary_cross_entropy", LossKind::BinaryCrossEntropy, "from_logits"},
    {"hinge", LossKind::Hinge, nullptr},
    {"squared_hinge", LossKind::SquaredHinge, nullptr},
    {"dice", LossKind::Dice, "smooth"},
};

// A training loss: the batch mean and its gradient. Targets are class ids (ids) for
// cross-entropy with ids and multiclass hinge, else values of pred's shape (y).
struct LossSpec {
    LossKind kind;
    double delta = 1.0, smooth = 1e-6;
    bool from_logits = true;

    template <typename T>
    double value(const T* pred,            // (N, C)
                 const T* y,               // (N, C) or null
                 const std::int64_t* ids,  // (N) or null
                 idx N, idx C) const;
    template <typename T>
    void grad(T* dpred,                 // (N, C)
              const T* pred,            // (N, C)
              const T* y,               // (N, C) or null
              const std::int64_t* ids,  // (N) or null
              idx N, idx C) const;
    // Both at once (fused for cross-entropy from logits with class ids); returns the value.
    template <typename T>
    double value_and_grad(T* dpred, const T* pred, const T* y, const std::int64_t* ids, idx N,
                          idx C) const;
    // The same with sample weights w (N): sum_i w_i l_i / (sum_i w_i k) and its gradient, where
    // l_i is row i's sum of the k unreduced values (k = C for the elementwise losses, else 1),
    // so unit weights give the mean. scratch holds the N k unreduced values.
    template <typename T>
    double weighted_value_and_grad(T* dpred, T* scratch, const T* pred, const T* y,
                                   const std::int64_t* ids, const T* w, idx N, idx C) const;
    idx values_per_row(bool with_ids, idx C) const;
};

enum class Rule { GD, Momentum, RMSProp, Adam, AdamW };

// The update rules by name, with the state buffers each keeps (velocity, sq, Adam's m and v).
struct RuleInfo {
    const char* name;
    Rule rule;
    int n_state;
};
inline constexpr RuleInfo kRules[] = {{"gd", Rule::GD, 0},
                                      {"momentum", Rule::Momentum, 1},
                                      {"rmsprop", Rule::RMSProp, 1},
                                      {"adam", Rule::Adam, 2},
                                      {"adamw", Rule::AdamW, 2}};

// One optimizer step: clip raw gradients by global norm (clip_norm > 0), coupled weight decay
// on the weights (not AdamW: its decay is decoupled), then the rule's update.
struct UpdateRule {
    Rule rule;
    double beta = 0.9;
    MomentumForm form = MomentumForm::EMA;
    bool nesterov = false;
    double rho = 0.9, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0, clip_norm = 0.0;

    template <typename T>
    void step(T* params,  // (n)
              T* grads,   // (n)
              T* state1,  // (n) velocity / sq / m, or null if the rule keeps none
              T* state2,  // (n) Adam's v, or null
              idx n, idx n_decay, double lr, long long t) const;

    // step's parts: the gradient's scale (clip_norm over the whole of grads (n), else 1), and
    // the update of the arena's slice [lo, hi) with it (the first n_decay entries are weights).
    template <typename T>
    T clip_scale(const T* grads, idx n) const;
    template <typename T>
    void apply(T* params, T* grads, T* state1, T* state2, idx lo, idx hi, idx n_decay, T clip,
               double lr, long long t) const;
};

template <typename T>
class Network {
public:
    explicit Network(std::vector<Op> ops);

    idx n_params() const { return n_params_; }
    idx n_decay() const { return n_decay_; }
    idx in_features() const { return ops_.front().in; }
    idx out_features() const { return ops_.back().out; }
    const std::vector<Op>& ops() const { return ops_; }

    // x (N, in) -> the last op's output (N, out), in the workspace until the next call.
    // Keeps every op's output for backward; x must stay alive until then.
    const T* forward(const T* params, const T* x, idx N);
    // dout (N, out) -> writes every op's gradients into grads; returns dx (N, in) in the
    // workspace, or null if !need_dx (the first layer's dx is then never computed).
    const T* backward(const T* params, T* grads, const T* dout, idx N, bool need_dx);
    // One epoch over the rows of x, y in `order`, batches of `batch` rows (last partial batch
    // used); ids[i] is the class id of row order[i] and sw[i], if given, the weight of its loss
    // (normalised per batch by the weights' sum). Writes each batch loss to losses; returns
    // the number of batches run, stopping after the first non-finite loss (its update not
    // applied) or, between batches, once *signals differs from signals_seen (a Ctrl-C).
    idx train_epoch(T* params, T* grads, T* state1, T* state2,
                    const T* x,                 // (rows, in)
                    const T* y,                 // (rows, out) targets, or null with ids
                    const std::int64_t* ids,    // (n_order) class ids in order, or null with y
                    const std::int64_t* order,  // (n_order) row indices
                    const T* sw,                // (n_order) sample weights in order, or null
                    idx n_order, idx batch, double lr, long long t, const LossSpec& loss,
                    const UpdateRule& rule, double* losses,
                    const std::atomic<unsigned>* signals = nullptr, unsigned signals_seen = 0);

private:
    // Grows the workspace to N rows (a no-op once large enough): a forward's outputs, and with
    // backward the backward's buffers too. Inference in large chunks grows only the outputs,
    // not the backward's buffers, which are larger still.
    void reserve(idx N, bool backward);
    void prefetch_rows(const T* x, const T* y, const std::int64_t* ids, idx first,
                       idx rows) const;  // ids: the batch's own
    // The optimizer step after a backward on N rows, each thread on the weight rows its GEMMs
    // computed.
    void update(T* params, T* grads, T* state1, T* state2, idx N, double lr, long long t,
                const UpdateRule& rule) const;
    // backward; with fold_gd_lr > 0 (plain GD, no clipping) the update is folded into the
    // weight GEMMs: params are updated in place (see dense_backward), grads left untouched.
    const T* backward_impl(T* params, T* grads, const T* dout, idx N, bool need_dx,
                           double fold_gd_lr, double weight_decay);

    std::vector<Op> ops_;
    idx n_params_ = 0, n_decay_ = 0, max_width_ = 0, out_rows_ = 0, grad_rows_ = 0;
    std::vector<avector<T>> out_;  // per op output (out_rows_, op.out)
    std::vector<avector<T>> pre_;  // per dense op whose activation needs_input: its z
    avector<T> grad_a_, grad_b_;   // ping-pong d loss / d activations (grad_rows_, max_width_)
    avector<T> dz_;                // dense backward scratch (grad_rows_, max_width_)
    avector<T> xb_, yb_;           // the gathered batch
    avector<T> loss_rows_;         // a weighted batch's unreduced loss values
    const T* input_ = nullptr;     // x of the last forward
};

}  // namespace pycvnn
