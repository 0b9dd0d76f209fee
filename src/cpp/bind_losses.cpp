// The losses' bindings: <name>_forward (the value) and <name>_backward (d loss / d pred) for
// every entry of kLosses, and LossSpec, a loss by name for the training core. One checking
// function per family of target: elementwise values, class targets, binary labels, masks.
#include <string>

#include "bind.hpp"
#include "losses.hpp"
#include "network.hpp"

namespace pycvnn::bind {
namespace {

using pycvnn::LossKind;
using pycvnn::LossSpec;

// The kernel's answer: with backward, d loss / d pred of pred's shape from grad(gp); else the
// value from value(op), op the unreduced output (of shape `unreduced`) or null unless "none".
template <typename T, typename V, typename G>
py::object loss_result(const carray<T>& p, bool backward, Reduction r, const shape_t& unreduced,
                       V value, G grad) {
    if (backward) {
        py::array_t<T> g(shape_of(p));
        T* gp = g.mutable_data();
        {
            py::gil_scoped_release nogil;
            grad(gp);
        }
        return std::move(g);
    }
    py::array_t<T> out(r == Reduction::None ? unreduced : shape_t{0});
    T* op = r == Reduction::None ? out.mutable_data() : nullptr;
    double v;
    {
        py::gil_scoped_release nogil;
        v = value(op);
    }
    if (r == Reduction::None) return std::move(out);
    return py::float_(v);
}

// l1, l2, huber: pred any shape, target pred's shape.
py::object elementwise(const LossSpec& s, bool backward, const py::array& pred,
                       const py::array& target, Reduction r) {
    require_same_shape(target, "target", pred, "pred");
    return dispatch(pred, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> p(pred), t(target);
        const T *pp = p.data(), *tp = t.data();
        const idx n = p.size();
        const T delta = T(s.delta);
        return loss_result(
            p, backward, r, shape_of(p),
            [&](T* op) {
                if (s.kind == LossKind::L1) return pycvnn::l1_forward(op, pp, tp, n, r);
                if (s.kind == LossKind::L2) return pycvnn::l2_forward(op, pp, tp, n, r);
                return pycvnn::huber_forward(op, pp, tp, n, delta, r);
            },
            [&](T* gp) {
                if (s.kind == LossKind::L1) return pycvnn::l1_backward(gp, pp, tp, n, r);
                if (s.kind == LossKind::L2) return pycvnn::l2_backward(gp, pp, tp, n, r);
                pycvnn::huber_backward(gp, pp, tp, n, delta, r);
            });
    });
}

// A target of values (pred's shape) or of class ids (N,) in [0, C), checked; the ids copied.
struct Targets {
    bool values;
    ids_array ids;
    Targets(const py::array& target, const py::array& pred, bool values_, idx N, idx C)
        : values(values_) {
        if (values)
            require_same_shape(target, "target", pred, "pred");
        else
            ids = class_ids(target, N, C);
    }
    // The values as T, or an empty array when the target is class ids.
    template <typename T>
    carray<T> as(const py::array& target) const {
        return values ? carray<T>(target) : carray<T>(shape_t{0});
    }
    const std::int64_t* id_data() const { return values ? nullptr : ids.data(); }
};

// cross_entropy: pred (N, C); target class ids (N,) or probabilities (N, C).
py::object cross_entropy(const LossSpec& s, bool backward, const py::array& pred,
                         const py::array& target, Reduction r) {
    require_ndim(pred, "pred", 2);
    const idx N = pred.shape(0), C = pred.shape(1);
    const Targets targets(target, pred, target.ndim() == 2, N, C);
    const bool soft = targets.values;
    return dispatch(pred, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> p(pred), t = targets.as<T>(target);
        const T *pp = p.data(), *tp = t.data();
        const std::int64_t* ip = targets.id_data();
        const bool logits = s.from_logits;
        return loss_result(
            p, backward, r, shape_t{N},
            [&](T* op) {
                return soft ? pycvnn::cross_entropy_forward(op, pp, tp, N, C, logits, r)
                            : pycvnn::cross_entropy_forward(op, pp, ip, N, C, logits, r);
            },
            [&](T* gp) {
                if (soft) return pycvnn::cross_entropy_backward(gp, pp, tp, N, C, logits, r);
                pycvnn::cross_entropy_backward(gp, pp, ip, N, C, logits, r);
            });
    });
}

bool binary_shape(const py::array& pred) {
    return pred.ndim() == 1 || (pred.ndim() == 2 && pred.shape(1) == 1);
}

// binary_cross_entropy: pred (N,) or (N, 1), target pred's shape with values in [0, 1].
py::object binary_cross_entropy(const LossSpec& s, bool backward, const py::array& pred,
                                const py::array& target, Reduction r) {
    if (!binary_shape(pred)) fail("pred", "shape (N,) or (N, 1)", "shape " + shape_str(pred));
    require_same_shape(target, "target", pred, "pred");
    const idx N = pred.shape(0);
    return dispatch(pred, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> p(pred), t(target);
        require_values_in(t, "target", false);
        const T *pp = p.data(), *tp = t.data();
        const bool logits = s.from_logits;
        return loss_result(
            p, backward, r, shape_t{N},
            [&](T* op) { return pycvnn::binary_cross_entropy_forward(op, pp, tp, N, logits, r); },
            [&](T* gp) { pycvnn::binary_cross_entropy_backward(gp, pp, tp, N, logits, r); });
    });
}

// hinge, squared_hinge: binary scores (N,) or (N, 1) with targets in {-1, +1}, or multiclass
// scores (N, C) with class ids (N,).
py::object hinge(const LossSpec& s, bool backward, const py::array& pred, const py::array& target,
                 Reduction r) {
    const bool binary = binary_shape(pred), squared = s.kind == LossKind::SquaredHinge;
    if (!binary && pred.ndim() != 2)
        fail("pred", "scores of shape (N,), (N, 1) or (N, C)", "shape " + shape_str(pred));
    const idx N = pred.shape(0), C = binary ? 1 : pred.shape(1);
    const Targets targets(target, pred, binary, N, C);
    return dispatch(pred, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> p(pred), t = targets.as<T>(target);
        if (binary) require_values_in(t, "target", true);
        const T *pp = p.data(), *tp = t.data();
        const std::int64_t* ip = targets.id_data();
        return loss_result(
            p, backward, r, shape_t{N},
            [&](T* op) {
                return binary ? pycvnn::hinge_binary_forward(op, pp, tp, N, squared, r)
                              : pycvnn::hinge_multiclass_forward(op, pp, ip, N, C, squared, r);
            },
            [&](T* gp) {
                if (binary) return pycvnn::hinge_binary_backward(gp, pp, tp, N, squared, r);
                pycvnn::hinge_multiclass_backward(gp, pp, ip, N, C, squared, r);
            });
    });
}

// dice: pred (N, ...) probabilities, target pred's shape; per sample over the other axes.
py::object dice(const LossSpec& s, bool backward, const py::array& pred, const py::array& target,
                Reduction r) {
    require_min_ndim(pred, "pred", 1);
    require_same_shape(target, "target", pred, "pred");
    require_at_least(s.smooth, "smooth", 0.0, false);
    const idx N = pred.shape(0), M = pred.size() / N;
    return dispatch(pred, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> p(pred), t(target);
        const T *pp = p.data(), *tp = t.data();
        const T smooth = T(s.smooth);
        return loss_result(
            p, backward, r, shape_t{N},
            [&](T* op) { return pycvnn::dice_forward(op, pp, tp, N, M, smooth, r); },
            [&](T* gp) { pycvnn::dice_backward(gp, pp, tp, N, M, smooth, r); });
    });
}

// A loss kernel's binding: the checks every loss makes, then its family's.
py::object loss_kernel(const LossSpec& s, bool backward, const ArrayIn& pred_in,
                       const ArrayIn& target_in, const std::string& reduction) {
    if (s.kind == LossKind::Huber) require_at_least(s.delta, "delta", 0.0, true);
    const py::array &pred = pred_in.a, &target = target_in.a;
    require_input(pred, "pred");
    require_numeric(target, "target");
    const Reduction r = parse_reduction(reduction);
    switch (s.kind) {
        case LossKind::L1:
        case LossKind::L2:
        case LossKind::Huber: return elementwise(s, backward, pred, target, r);
        case LossKind::CrossEntropy: return cross_entropy(s, backward, pred, target, r);
        case LossKind::BinaryCrossEntropy:
            return binary_cross_entropy(s, backward, pred, target, r);
        case LossKind::Hinge:
        case LossKind::SquaredHinge: return hinge(s, backward, pred, target, r);
        case LossKind::Dice: return dice(s, backward, pred, target, r);
    }
    return py::none();
}

// A LossSpec for kLosses' entry `name`, options checked as the training core needs them.
PyLossSpec make_loss_spec(const std::string& name, double delta, double smooth, bool from_logits) {
    std::string names;
    for (const auto& info : pycvnn::kLosses) {
        if (name == info.name) {
            require_at_least(delta, "delta", 0.0, true);
            require_at_least(smooth, "smooth", 0.0, false);
            return PyLossSpec{name, LossSpec{info.kind, delta, smooth, from_logits}};
        }
        names += std::string(names.empty() ? "'" : ", '") + info.name + "'";
    }
    fail("name", "one of " + names, "'" + name + "'");
}

// Registers <name>_forward and <name>_backward with the signature its option gives.
void bind_loss(py::module_& m, const pycvnn::LossInfo& info, bool backward) {
    const std::string fn = std::string(info.name) + (backward ? "_backward" : "_forward");
    const char* doc = backward ? "d loss / d pred, of pred's shape (for \"none\": of the sum)."
                               : "The loss: a float for \"mean\" and \"sum\", the unreduced array "
                                 "for \"none\".";
    const LossSpec base{info.kind};
    const std::string option = info.option ? info.option : "";
    using Str = const std::string&;
    if (option.empty()) {
        m.def(
            fn.c_str(),
            [base, backward](const ArrayIn& p, const ArrayIn& t, Str r) {
                return loss_kernel(base, backward, p, t, r);
            },
            py::arg("pred"), py::arg("target"), py::arg("reduction") = "mean", doc);
    } else if (option == "from_logits") {
        m.def(
            fn.c_str(),
            [base, backward](const ArrayIn& p, const ArrayIn& t, bool from_logits, Str r) {
                LossSpec s = base;
                s.from_logits = from_logits;
                return loss_kernel(s, backward, p, t, r);
            },
            py::arg("pred"), py::arg("target"), py::arg("from_logits") = base.from_logits,
            py::arg("reduction") = "mean", doc);
    } else {  // a number: delta or smooth
        const bool is_delta = option == "delta";
        m.def(
            fn.c_str(),
            [base, backward, is_delta](const ArrayIn& p, const ArrayIn& t, double value, Str r) {
                LossSpec s = base;
                (is_delta ? s.delta : s.smooth) = value;
                return loss_kernel(s, backward, p, t, r);
            },
            py::arg("pred"), py::arg("target"),
            py::arg(info.option) = is_delta ? base.delta : base.smooth,
            py::arg("reduction") = "mean", doc);
    }
}

}  // namespace

py::object PyLossSpec::call(bool backward, const py::object& pred, const py::object& target) const {
    return loss_kernel(spec, backward, array_in(pred, "pred"), array_in(target, "target"), "mean");
}

void bind_losses(py::module_& m) {
    py::tuple names(std::size(pycvnn::kLosses));
    size_t k = 0;
    for (const auto& info : pycvnn::kLosses) {
        bind_loss(m, info, false);
        bind_loss(m, info, true);
        names[k++] = py::make_tuple(
            info.name, info.option ? py::object(py::str(info.option)) : py::object(py::none()));
    }
    m.attr("LOSSES") = names;
    py::class_<PyLossSpec>(m, "LossSpec", "A loss by name with its options; the batch mean.")
        .def(py::init(&make_loss_spec), py::arg("name"), py::arg("delta") = 1.0,
             py::arg("smooth") = 1e-6, py::arg("from_logits") = true)
        .def(
            "value",
            [](const PyLossSpec& s, py::object p, py::object t) { return s.call(false, p, t); },
            py::arg("pred"), py::arg("target"))
        .def(
            "grad",
            [](const PyLossSpec& s, py::object p, py::object t) { return s.call(true, p, t); },
            py::arg("pred"), py::arg("target"))
        .def_readonly("name", &PyLossSpec::name);
}

}  // namespace pycvnn::bind
