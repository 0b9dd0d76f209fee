// The optimizers' bindings: UpdateRule (a rule of kRules with its hyperparameters, the training
// core's step) and the single-rule updates <rule>_update, which run the same step without
// clipping or coupled decay. All update numpy buffers in place, never a copy.
#include <string>

#include "bind.hpp"
#include "network.hpp"
#include "optimizers.hpp"

namespace pycvnn::bind {

using pycvnn::Rule;
using pycvnn::UpdateRule;

Buffers arena_buffers(const UpdateRule& rule, const ArrayInOut& params, const ArrayInOut& grads,
                      const ArrayInOut& state1, const ArrayInOut& state2) {
    std::vector<Buffer> bufs{{"params", params, true}, {"grads", grads, true}};
    const int n = n_state(rule);
    if (n >= 1) bufs.push_back({"state1", state1, true});
    if (n >= 2) bufs.push_back({"state2", state2, true});
    return require_inplace(bufs);
}

int n_state(const UpdateRule& r) {
    for (const auto& info : pycvnn::kRules)
        if (info.rule == r.rule) return info.n_state;
    return 0;
}

namespace {

// "ema" or "heavy_ball"; Nesterov needs heavy_ball.
pycvnn::MomentumForm parse_momentum_form(const std::string& form, bool nesterov) {
    pycvnn::MomentumForm f = pycvnn::MomentumForm::EMA;
    if (form == "heavy_ball")
        f = pycvnn::MomentumForm::HeavyBall;
    else if (form != "ema")
        fail("form", "one of 'ema', 'heavy_ball'", "'" + form + "'");
    if (nesterov && f == pycvnn::MomentumForm::EMA)
        fail("nesterov", "False with form='ema' (Nesterov needs form='heavy_ball')", "True");
    return f;
}

// A rule by name with its hyperparameters, each checked (a ValueError naming it).
UpdateRule rule_of(const std::string& name, double beta, const std::string& form, bool nesterov,
                   double rho = 0.9, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
                   double weight_decay = 0.0, double clip_norm = 0.0) {
    UpdateRule r;
    std::string names;
    bool found = false;
    for (const auto& info : pycvnn::kRules) {
        if (name == info.name) r.rule = info.rule, found = true;
        names += std::string(names.empty() ? "'" : ", '") + info.name + "'";
    }
    if (!found) fail("rule", "one of " + names, "'" + name + "'");
    r.form = parse_momentum_form(form, nesterov);
    for (auto [v, arg] :
         {std::pair{beta, "beta"}, {rho, "rho"}, {beta1, "beta1"}, {beta2, "beta2"}})
        require_unit_interval(v, arg);
    require_at_least(eps, "eps", 0.0, true);
    require_at_least(weight_decay, "weight_decay", 0.0, false);
    require_at_least(clip_norm, "clip_norm", 0.0, false);
    r.beta = beta, r.nesterov = nesterov, r.rho = rho, r.beta1 = beta1, r.beta2 = beta2;
    r.eps = eps, r.weight_decay = weight_decay, r.clip_norm = clip_norm;
    return r;
}

void require_step(long long t) {
    if (t < 1) fail("t", "a step number >= 1", std::to_string(t));
}

void update_rule_step(const UpdateRule& rule, const ArrayInOut& params, const ArrayInOut& grads,
                      const ArrayInOut& state1, const ArrayInOut& state2, long long n_decay,
                      double lr, long long t) {
    Buffers b = arena_buffers(rule, params, grads, state1, state2);
    if (n_decay < 0 || n_decay > b.n)
        fail("n_decay", "a count in [0, " + std::to_string(b.n) + "]", std::to_string(n_decay));
    require_at_least(lr, "lr", 0.0, false);
    require_step(t);
    run_inplace(b.f64, [&](auto tag) {
        using T = decltype(tag);
        rule.step(static_cast<T*>(b.w(0)), static_cast<T*>(b.w(1)), state_ptr<T>(b, 2),
                  state_ptr<T>(b, 3), b.n, idx(n_decay), lr, t);
    });
}

// One rule's update of param from grad and the rule's state (named as its binding names
// them): the training core's step on the whole buffer, with nothing clipped and no coupled
// decay, so grad is only read (AdamW's decay is decoupled: it reads param). The buffers are
// checked first, then lr, then the rule make_rule() builds, then t.
template <typename F>
void single_update(const ArrayInOut& param, const ArrayInOut& grad,
                   std::initializer_list<Buffer> state, double lr, long long t, F make_rule) {
    std::vector<Buffer> all{{"param", param, true}, {"grad", grad, false}};
    for (const Buffer& s : state) all.push_back(s);
    Buffers b = require_inplace(all);
    require_at_least(lr, "lr", 0.0, false);
    const UpdateRule rule = make_rule();
    require_step(t);
    run_inplace(b.f64, [&](auto tag) {
        using T = decltype(tag);
        T* g = const_cast<T*>(static_cast<const T*>(b.r(1)));  // read only, as said above
        rule.step(static_cast<T*>(b.w(0)), g, state_ptr<T>(b, 2), state_ptr<T>(b, 3), b.n, b.n, lr,
                  t);
    });
}

using In = const ArrayInOut&;
using Str = const std::string&;

}  // namespace

void bind_optimizers(py::module_& m) {
    // The single-rule updates: each builds its rule (which checks the hyperparameters by name).
    m.def(
        "gd_update",
        [](In p, In g, double lr) {
            single_update(p, g, {}, lr, 1, [] { return rule_of("gd", 0.9, "ema", false); });
        },
        py::arg("param"), py::arg("grad"), py::arg("lr"), "param -= lr * grad.");
    m.def(
        "momentum_update",
        [](In p, In g, In velocity, double lr, double beta, Str form, bool nesterov) {
            single_update(p, g, {{"velocity", velocity, true}}, lr, 1,
                          [&] { return rule_of("momentum", beta, form, nesterov); });
        },
        py::arg("param"), py::arg("grad"), py::arg("velocity"), py::arg("lr"),
        py::arg("beta") = 0.9, py::arg("form") = "ema", py::arg("nesterov") = false);
    m.def(
        "rmsprop_update",
        [](In p, In g, In sq, double lr, double rho, double eps) {
            single_update(p, g, {{"sq", sq, true}}, lr, 1, [&] {
                return rule_of("rmsprop", 0.9, "ema", false, rho, 0.9, 0.999, eps);
            });
        },
        py::arg("param"), py::arg("grad"), py::arg("sq"), py::arg("lr"), py::arg("rho") = 0.9,
        py::arg("eps") = 1e-8);
    m.def(
        "adam_update",
        [](In p, In g, In m1, In v, double lr, double beta1, double beta2, double eps,
           long long t) {
            single_update(p, g, {{"m", m1, true}, {"v", v, true}}, lr, t, [&] {
                return rule_of("adam", 0.9, "ema", false, 0.9, beta1, beta2, eps);
            });
        },
        py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("t"));
    m.def(
        "adamw_update",
        [](In p, In g, In m1, In v, double lr, double beta1, double beta2, double eps, long long t,
           double weight_decay) {
            single_update(p, g, {{"m", m1, true}, {"v", v, true}}, lr, t, [&] {
                return rule_of("adamw", 0.9, "ema", false, 0.9, beta1, beta2, eps, weight_decay);
            });
        },
        py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("t"), py::arg("weight_decay"));

    m.def(
        "add_weight_decay",
        [](In grad, In param, double weight_decay) {
            Buffers b = require_inplace({{"grad", grad, true}, {"param", param, false}});
            require_at_least(weight_decay, "weight_decay", 0.0, false);
            run_inplace(b.f64, [&](auto tag) {
                using T = decltype(tag);
                pycvnn::add_weight_decay(static_cast<T*>(b.w(0)), static_cast<const T*>(b.r(1)),
                                         T(weight_decay), b.n);
            });
        },
        py::arg("grad"), py::arg("param"), py::arg("weight_decay"),
        "Coupled L2, in place: grad += weight_decay * param.");
    // global_norm only reads: any numeric array-like is accepted (float64 stays float64).
    m.def(
        "global_norm",
        [](const ArrayIn& grad_in) {
            const py::array& grad = grad_in.a;
            require_input(grad, "grad");
            double norm = 0;
            dispatch(grad, [&](auto tag) -> py::object {
                using T = decltype(tag);
                carray<T> g(grad);
                const T* gp = g.data();
                const idx n = g.size();
                py::gil_scoped_release nogil;
                norm = pycvnn::global_norm(gp, n);
                return py::object();
            });
            return norm;
        },
        py::arg("grad"), "sqrt(sum(grad^2)) over the flat buffer, accumulated in float64.");
    m.def(
        "clip_by_global_norm",
        [](In grad, double max_norm) {
            Buffers b = require_inplace({{"grad", grad, true}});
            require_at_least(max_norm, "max_norm", 0.0, true);
            double norm = 0;
            run_inplace(b.f64, [&](auto tag) {
                using T = decltype(tag);
                norm = pycvnn::clip_by_global_norm(static_cast<T*>(b.w(0)), max_norm, b.n);
            });
            return norm;
        },
        py::arg("grad"), py::arg("max_norm"),
        "In place: if norm > max_norm, grad *= max_norm / norm. Returns the norm before.");

    py::class_<UpdateRule>(
        m, "UpdateRule",
        "One optimizer's rule and hyperparameters; lr and the step number t come per step.")
        .def(py::init(&rule_of), py::arg("rule"), py::arg("beta") = 0.9, py::arg("form") = "ema",
             py::arg("nesterov") = false, py::arg("rho") = 0.9, py::arg("beta1") = 0.9,
             py::arg("beta2") = 0.999, py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0,
             py::arg("clip_norm") = 0.0)
        .def("step", &update_rule_step, py::arg("params"), py::arg("grads"), py::arg("state1"),
             py::arg("state2"), py::arg("n_decay"), py::arg("lr"), py::arg("t"),
             "One update of params in place; t >= 1 is this step's number.");
    py::tuple rules(std::size(pycvnn::kRules));
    size_t k = 0;
    for (const auto& info : pycvnn::kRules) rules[k++] = py::make_tuple(info.name, info.n_state);
    m.attr("RULES") = rules;
}

}  // namespace pycvnn::bind
