// The stateless kernels' bindings: the GEMM, the activations (one pair per kActivations entry)
// and the dense layer.
#include <optional>
#include <string>
#include <vector>

#include "bind.hpp"
#include "dense.hpp"
#include "gemm.hpp"

namespace pycvnn::bind {
namespace {

// ---- gemm -------------------------------------------------------------------------------

py::object matmul(const ArrayIn& a_in, const ArrayIn& b_in, bool ta, bool tb) {
    const py::array &a = a_in.a, &b = b_in.a;
    require_input(a, "a");
    require_input(b, "b");
    require_ndim(a, "a", 2);
    require_ndim(b, "b", 2);
    require_int_sizes(a, "a");
    require_int_sizes(b, "b");
    const idx m = ta ? a.shape(1) : a.shape(0), ka = ta ? a.shape(0) : a.shape(1);
    const idx kb = tb ? b.shape(1) : b.shape(0), n = tb ? b.shape(0) : b.shape(1);
    if (ka != kb) fail("b", "inner dimension " + std::to_string(ka) + " (a's)", std::to_string(kb));
    return dispatch(a, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> A(a), B(b);
        py::array_t<T> c({m, n});
        const T* pa = A.data();
        const T* pb = B.data();
        T* pc = c.mutable_data();
        const int lda = int(A.shape(1)), ldb = int(B.shape(1));
        {
            py::gil_scoped_release nogil;
            pycvnn::gemm<T>(ta, tb, int(m), int(n), int(ka), T(1), pa, lda, pb, ldb, T(0), pc,
                            int(n));
        }
        return std::move(c);
    });
}

// ---- activations ------------------------------------------------------------------------
// kernel(out, z, n, cols): cols is the last axis (softmax's rows), unused by the elementwise ones.

template <typename K>
py::object activation_forward(const ArrayIn& z_in, K kernel, bool rows) {
    const py::array& z = z_in.a;
    require_input(z, "z");
    if (rows) require_min_ndim(z, "z", 1);
    return dispatch(z, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> zc(z);
        py::array_t<T> out(shape_of(zc));
        const T* zp = zc.data();
        T* op = out.mutable_data();
        const idx n = zc.size(), cols = zc.ndim() ? zc.shape(zc.ndim() - 1) : 1;
        {
            py::gil_scoped_release nogil;
            kernel(op, zp, n, cols);
        }
        return std::move(out);
    });
}

// kernel(dz, z, dout, n, cols)
template <typename K>
py::object activation_backward(const ArrayIn& z_in, const ArrayIn& dout_in, K kernel, bool rows) {
    const py::array &z = z_in.a, &dout = dout_in.a;
    require_input(z, "z");
    require_numeric(dout, "dout");
    require_same_shape(dout, "dout", z, "z");
    if (rows) require_min_ndim(z, "z", 1);
    return dispatch(z, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> zc(z), dc(dout);
        py::array_t<T> dz(shape_of(zc));
        const T* zp = zc.data();
        const T* dp = dc.data();
        T* op = dz.mutable_data();
        const idx n = zc.size(), cols = zc.ndim() ? zc.shape(zc.ndim() - 1) : 1;
        {
            py::gil_scoped_release nogil;
            kernel(op, zp, dp, n, cols);
        }
        return std::move(dz);
    });
}

// ---- dense ------------------------------------------------------------------------------

// x (N, in), w (out, in); b (out,) when given.
void check_dense(const py::array& x, const char* xname, const py::array& w) {
    require_input(x, xname);
    require_input(w, "w");
    require_ndim(x, xname, 2);
    require_ndim(w, "w", 2);
    require_int_sizes(x, xname);
    require_int_sizes(w, "w");
    require_dim(x, xname, 1, w.shape(1), "in_features, w.shape[1]");
}

py::object dense_forward(const ArrayIn& x_in, const ArrayIn& w_in, const ArrayIn& b_in,
                         const std::string& activation, double alpha) {
    const py::array &x = x_in.a, &w = w_in.a, &b = b_in.a;
    check_dense(x, "x", w);
    require_input(b, "b");
    require_ndim(b, "b", 1);
    require_dim(b, "b", 0, w.shape(0), "out_features, w.shape[0]");
    const Activation act = dense_activation(activation, alpha);
    const idx N = x.shape(0), in = x.shape(1), out = w.shape(0);
    return dispatch(x, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> X(x), W(w), B(b);
        py::array_t<T> a({N, out});
        const T* xp = X.data();
        const T* wp = W.data();
        const T* bp = B.data();
        T* ap = a.mutable_data();
        std::vector<T> z(needs_input(act) ? size_t(N * out) : 0);  // workspace
        {
            py::gil_scoped_release nogil;
            pycvnn::dense_forward(ap, xp, wp, bp, N, in, out, act, T(alpha), z.data());
        }
        return std::move(a);
    });
}

py::object dense_backward(const ArrayIn& dout_in, const ArrayIn& x_in, const ArrayIn& w_in,
                          const ArrayIn& a_in, const std::string& activation, double alpha,
                          const std::optional<ArrayIn>& z_in) {
    const py::array &dout = dout_in.a, &x = x_in.a, &w = w_in.a, &a = a_in.a;
    require_input(dout, "dout");
    check_dense(x, "x", w);
    require_input(a, "a");
    require_ndim(dout, "dout", 2);
    require_ndim(a, "a", 2);
    require_dim(dout, "dout", 0, x.shape(0), "batch size, x.shape[0]");
    require_dim(dout, "dout", 1, w.shape(0), "out_features, w.shape[0]");
    require_same_shape(a, "a", dout, "dout");
    const Activation act = dense_activation(activation, alpha);
    if (needs_input(act) && !z_in)
        fail("z",
             "the forward's x w^T + b (activation '" + activation +
                 "' has a derivative that a alone does not give)",
             "None");
    const py::array z = z_in ? z_in->a : py::array();
    if (z_in) {
        require_input(z, "z");
        require_same_shape(z, "z", dout, "dout");
    }
    const idx N = x.shape(0), in = x.shape(1), out = w.shape(0);
    return dispatch(dout, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> D(dout), X(x), W(w), A(a), Z(z_in ? z : a);
        py::array_t<T> dx({N, in}), dw({out, in}), db(shape_t{out});
        std::vector<T> dz(act == Activation::None ? 0 : size_t(N * out));  // workspace
        const T *dp = D.data(), *xp = X.data(), *wp = W.data(), *ap = A.data(), *zp = Z.data();
        T *dxp = dx.mutable_data(), *dwp = dw.mutable_data(), *dbp = db.mutable_data();
        {
            py::gil_scoped_release nogil;
            pycvnn::dense_backward(dxp, dwp, dbp, dz.empty() ? nullptr : dz.data(), dp, xp, wp, ap,
                                   zp, N, in, out, act, T(alpha));
        }
        return py::make_tuple(dx, dw, db);
    });
}

}  // namespace

void bind_kernels(py::module_& m) {
    // Test hook: c := alpha op(a) op(b) + beta c in place through one kernel ("auto" picks by
    // shape, as training does), so tests check the small kernels against OpenBLAS. With a gate
    // (c's shape), c := 0 where gate <= 0 in the epilogue; returns whether that was done.
    m.def(
        "_gemm",
        [](const ArrayIn& a_in, const ArrayIn& b_in, const ArrayInOut& c_out, bool ta, bool tb,
           double alpha, double beta, const std::string& path, const py::object& gate) {
            Buffers cb = require_inplace({{"c", c_out, true}});
            const py::array &a = a_in.a, &b = b_in.a, &c = cb.arrays[0];
            require_ndim(a, "a", 2);
            require_ndim(b, "b", 2);
            require_ndim(c, "c", 2);
            const pycvnn::GemmPath p = pycvnn::parse_gemm_path(path);
            const idx m = c.shape(0), n = c.shape(1), k = ta ? a.shape(0) : a.shape(1);
            if ((ta ? a.shape(1) : a.shape(0)) != m || (tb ? b.shape(1) : b.shape(0)) != k ||
                (tb ? b.shape(0) : b.shape(1)) != n)
                fail("a, b, c", "op(a) (m, k), op(b) (k, n) and c (m, n)", "other shapes");
            const bool has_gate = !gate.is_none();
            py::array g;  // (a default py::array is an empty array, not a null handle)
            if (has_gate) {
                g = py::array::ensure(gate);
                if (!g) fail("gate", "an array", "another object");
                require_same_shape(g, "gate", c, "c");
            }
            void* pc = cb.w(0);
            return dispatch(c, [&](auto tag) -> py::object {
                using T = decltype(tag);
                carray<T> A(a), B(b);
                carray<T> G = has_gate ? carray<T>(g) : carray<T>();
                bool gated;
                {
                    py::gil_scoped_release nogil;
                    gated = pycvnn::gemm_via<T>(
                        p, ta, tb, int(m), int(n), int(k), T(alpha), A.data(), int(A.shape(1)),
                        B.data(), int(B.shape(1)), T(beta), static_cast<T*>(pc), int(n),
                        {nullptr, false, has_gate ? G.data() : nullptr});
                }
                return py::bool_(gated && has_gate);
            });
        },
        py::arg("a"), py::arg("b"), py::arg("c"), py::arg("trans_a"), py::arg("trans_b"),
        py::arg("alpha"), py::arg("beta"), py::arg("path"), py::arg("gate") = py::none());
    m.def("_small_gemm_available", &pycvnn::small_gemm_available);

    m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
          py::arg("trans_b") = false, "op(a) @ op(b) through the GEMM entry point.");

    // ---- activations: <name>_forward / <name>_backward for every entry of kActivations ----
    for (const auto& info : pycvnn::kActivations) {
        const Activation act = info.act;
        const bool rows = info.per_row;
        const std::string fwd = std::string(info.name) + "_forward";
        const std::string bwd = std::string(info.name) + "_backward";
        // An option's range is checked here, as for a layer: leaky ReLU's alpha >= 0.
        auto forward = [act, rows](const ArrayIn& z, double alpha) {
            require_at_least(alpha, "alpha", 0.0, false);
            return activation_forward(
                z,
                [act, alpha](auto* o, const auto* zp, idx n, idx c) {
                    pycvnn::activation_forward(o, zp, n / c, c, act, elem_t<decltype(o)>(alpha));
                },
                rows);
        };
        auto backward = [act, rows](const ArrayIn& z, const ArrayIn& dout, double alpha) {
            require_at_least(alpha, "alpha", 0.0, false);
            return activation_backward(
                z, dout,
                [act, alpha](auto* o, const auto* zp, const auto* d, idx n, idx c) {
                    pycvnn::activation_backward(o, zp, d, n / c, c, act,
                                                elem_t<decltype(o)>(alpha));
                },
                rows);
        };
        if (info.has_alpha) {
            m.def(fwd.c_str(), forward, py::arg("z"), py::arg("alpha") = 0.01, info.forward_doc);
            m.def(bwd.c_str(), backward, py::arg("z"), py::arg("dout"), py::arg("alpha") = 0.01,
                  info.backward_doc);
        } else {
            m.def(
                fwd.c_str(), [forward](const ArrayIn& z) { return forward(z, 0.0); }, py::arg("z"),
                info.forward_doc);
            m.def(
                bwd.c_str(),
                [backward](const ArrayIn& z, const ArrayIn& dout) {
                    return backward(z, dout, 0.0);
                },
                py::arg("z"), py::arg("dout"), info.backward_doc);
        }
    }
    py::tuple names(std::size(pycvnn::kActivations));
    size_t k = 0;
    for (const auto& info : pycvnn::kActivations)
        names[k++] = py::make_tuple(info.name, info.per_row, info.has_alpha, info.needs_input);
    m.attr("ACTIVATIONS") = names;

    // ---- dense ----
    m.def("dense_forward", &dense_forward, py::arg("x"), py::arg("w"), py::arg("b"),
          py::arg("activation") = "none", py::arg("alpha") = 0.01,
          "a = f(x w^T + b) (N, out); bias and activation fused in one pass.");
    m.def("dense_backward", &dense_backward, py::arg("dout"), py::arg("x"), py::arg("w"),
          py::arg("a"), py::arg("activation") = "none", py::arg("alpha") = 0.01,
          py::arg("z") = py::none(),
          "(dx, dw, db) from dout = d loss / d a, the forward's output a and, for an activation "
          "whose derivative needs it (gelu), its input z = x w^T + b.");
}

}  // namespace pycvnn::bind
