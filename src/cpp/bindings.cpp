// PYBIND11_MODULE(_core): check arrays, allocate outputs, release the GIL, call kernels. No math.
// Every function validates before it computes: non-numeric input is a TypeError,
// a wrong ndim/shape/value/name a ValueError whose message names the argument, the expected
// and the received value. float64 input runs the double kernel, any other numeric input the
// float one; the other arrays are cast to the first array's dtype (class ids to int64).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <signal.h>

#include <atomic>
#include <climits>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "activations.hpp"
#include "common.hpp"
#include "dense.hpp"
#include "gemm.hpp"
#include "losses.hpp"
#include "network.hpp"
#include "optimizers.hpp"
#include "parallel.hpp"

namespace py = pybind11;
using pycvnn::Activation;
using pycvnn::idx;
using pycvnn::Reduction;

namespace {

// An input array: anything np.asarray accepts (lists, scalars, arrays of any layout).
struct ArrayIn {
    py::array a;
};
// An array updated in place: taken as is, checked by require_inplace (never converted, so a
// list or a copy is never silently updated instead of the caller's buffer).
struct ArrayInOut {
    py::object o;
};

}  // namespace

namespace pybind11 {
namespace detail {
template <>
struct type_caster<ArrayIn> {
    PYBIND11_TYPE_CASTER(ArrayIn, const_name("numpy.ndarray"));
    bool load(handle src, bool) {
        value.a = py::array::ensure(src);
        if (!value.a) PyErr_Clear();
        return bool(value.a);
    }
};
template <>
struct type_caster<ArrayInOut> {
    PYBIND11_TYPE_CASTER(ArrayInOut, const_name("numpy.ndarray"));
    bool load(handle src, bool) {
        value.o = reinterpret_borrow<object>(src);
        return true;
    }
};
}  // namespace detail
}  // namespace pybind11

namespace {

template <typename T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;
using ids_array = carray<std::int64_t>;
using shape_t = std::vector<py::ssize_t>;

// The element type behind a kernel's pointer argument (for the generic kernel lambdas).
template <typename P>
using elem_t = std::remove_const_t<std::remove_pointer_t<P>>;

// ---- messages and checks ----------------------------------------------------------------

std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

std::string dtype_str(const py::array& a) { return std::string(py::str(a.dtype())); }

std::string num_str(double v) { return std::string(py::repr(py::float_(v))); }

[[noreturn]] void fail(const std::string& name, const std::string& expected,
                       const std::string& got) {
    throw py::value_error(name + ": expected " + expected + ", got " + got);
}

// float64 input runs the double kernel; any other numeric input is converted to float32.
bool is_f64(const py::array& a) { return a.dtype().kind() == 'f' && a.dtype().itemsize() == 8; }

// 4 or 8 for a float32/float64 array in native byte order, else 0 (the dtypes the in-place
// kernels accept).
py::ssize_t native_float_size(const py::array& a) {
    const py::dtype d = a.dtype();
    const bool native = d.byteorder() != (PY_BIG_ENDIAN ? '<' : '>');
    return (d.kind() == 'f' && native && (d.itemsize() == 4 || d.itemsize() == 8)) ? d.itemsize()
                                                                                   : 0;
}

bool is_integer(const py::array& a) {
    const char k = a.dtype().kind();
    return k == 'i' || k == 'u';
}

void require_numeric(const py::array& a, const char* name) {
    const char k = a.dtype().kind();
    if (k != 'f' && k != 'i' && k != 'u' && k != 'b')
        throw py::type_error(std::string(name) + ": expected a numeric array, got dtype " +
                             dtype_str(a));
}

void require_ndim(const py::array& a, const char* name, py::ssize_t ndim) {
    if (a.ndim() != ndim)
        fail(name, std::to_string(ndim) + "-d array",
             std::to_string(a.ndim()) + "-d array of shape " + shape_str(a));
}

void require_min_ndim(const py::array& a, const char* name, py::ssize_t ndim) {
    if (a.ndim() < ndim)
        fail(name, "an array with at least " + std::to_string(ndim) + " dimension(s)",
             std::to_string(a.ndim()) + "-d array");
}

void require_nonempty(const py::array& a, const char* name) {
    if (a.size() == 0) fail(name, "a non-empty array", "shape " + shape_str(a));
}

// Numeric and non-empty: what every input array must be.
void require_input(const py::array& a, const char* name) {
    require_numeric(a, name);
    require_nonempty(a, name);
}

void require_same_shape(const py::array& a, const char* name, const py::array& ref,
                        const char* ref_name) {
    bool same = a.ndim() == ref.ndim();
    for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == ref.shape(i);
    if (!same) fail(name, "shape " + shape_str(ref) + " (" + ref_name + "'s shape)", shape_str(a));
}

void require_dim(const py::array& a, const char* name, py::ssize_t axis, py::ssize_t want,
                 const std::string& what) {
    if (a.shape(axis) != want)
        fail(name,
             "shape[" + std::to_string(axis) + "] == " + std::to_string(want) + " (" + what + ")",
             "shape " + shape_str(a));
}

// The GEMM takes int sizes.
void require_int_sizes(const py::array& a, const char* name) {
    for (py::ssize_t i = 0; i < a.ndim(); ++i)
        if (a.shape(i) > INT_MAX) fail(name, "dimensions below 2^31", "shape " + shape_str(a));
}

void require_finite(double v, const char* name) {
    if (!std::isfinite(v)) fail(name, "a finite number", num_str(v));
}

void require_at_least(double v, const char* name, double lo, bool strict) {
    require_finite(v, name);
    if (strict ? !(v > lo) : !(v >= lo))
        fail(name, std::string(strict ? "a number > " : "a number >= ") + num_str(lo), num_str(v));
}

void require_unit_interval(double v, const char* name) {  // [0, 1)
    require_finite(v, name);
    if (!(v >= 0.0 && v < 1.0)) fail(name, "a value in [0, 1)", num_str(v));
}

Reduction parse_reduction(const std::string& s) {
    if (s == "mean") return Reduction::Mean;
    if (s == "sum") return Reduction::Sum;
    if (s == "none") return Reduction::None;
    fail("reduction", "one of 'none', 'mean', 'sum'", "'" + s + "'");
}

Activation parse_activation(const std::string& s) {
    if (s == "none") return Activation::None;
    std::string names = "'none'";
    for (const auto& info : pycvnn::kActivations) {
        if (s == info.name) return info.act;
        names += std::string(", '") + info.name + "'";
    }
    fail("activation", "one of " + names, "'" + s + "'");
}

void require_class_id(std::int64_t id, py::ssize_t at, py::ssize_t C) {
    if (id < 0 || id >= C)
        fail("target", "class ids in [0, " + std::to_string(C) + ")",
             std::to_string(id) + " at index " + std::to_string(at));
}

// Integer class ids (N,) in [0, C), as int64. With check_all, a fresh array holding each id
// as it was checked (the kernels index rows with them after the GIL is released, when another
// thread could rewrite the caller's array); without, the caller's ids (maybe its own buffer),
// checked for dtype and shape only: the caller copies and checks the ids it reads.
ids_array class_ids(const py::array& target, py::ssize_t N, py::ssize_t C, bool check_all = true) {
    if (!is_integer(target))
        fail("target",
             "integer class ids of shape (" + std::to_string(N) + ",) or probabilities of shape (" +
                 std::to_string(N) + ", " + std::to_string(C) + ")",
             dtype_str(target) + " array of shape " + shape_str(target));
    require_ndim(target, "target", 1);
    require_dim(target, "target", 0, N, "pred's batch size");
    ids_array ids(target);
    if (!check_all) return ids;
    ids_array own(N);
    const std::int64_t* p = ids.data();
    std::int64_t* q = own.mutable_data();
    for (py::ssize_t i = 0; i < N; ++i) {
        const std::int64_t id = p[i];  // read once: the value checked is the value kept
        require_class_id(id, i, C);
        q[i] = id;
    }
    return own;
}

// Binary targets: BCE needs values in [0, 1], hinge values in {-1, +1}.
template <typename T>
void require_values_in(const carray<T>& t, const char* name, bool plus_minus_one) {
    const T* p = t.data();
    for (py::ssize_t i = 0; i < t.size(); ++i) {
        const T v = p[i];
        const bool ok = plus_minus_one ? (v == T(1) || v == T(-1)) : (v >= T(0) && v <= T(1));
        if (!ok)
            fail(name, plus_minus_one ? "values in {-1, +1}" : "values in [0, 1]",
                 num_str(double(v)) + " at flat index " + std::to_string(i));
    }
}

shape_t shape_of(const py::array& a) { return shape_t(a.shape(), a.shape() + a.ndim()); }

// Run f(T{}) with T the kernel's dtype, chosen by the first input array.
template <typename F>
py::object dispatch(const py::array& first, F&& f) {
    pycvnn::Pool::Session session;  // one thread count for the whole call
    if (is_f64(first)) return f(double());
    return f(float());
}

// A loss value: the unreduced array for "none", else a Python float.
template <typename T>
py::object loss_result(py::array_t<T>& out, double value, Reduction r) {
    if (r == Reduction::None) return std::move(out);
    return py::float_(value);
}

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

// ---- elementwise losses -----------------------------------------------------------------

void check_elementwise(const py::array& pred, const py::array& target) {
    require_input(pred, "pred");
    require_numeric(target, "target");
    require_same_shape(target, "target", pred, "pred");
}

// kernel(out, pred, target, n, reduction) -> double
template <typename K>
py::object elementwise_loss_forward(const ArrayIn& pred_in, const ArrayIn& target_in,
                                    const std::string& reduction, K kernel) {
    const py::array &pred = pred_in.a, &target = target_in.a;
    check_elementwise(pred, target);
    const Reduction r = parse_reduction(reduction);
    return dispatch(pred, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> p(pred), t(target);
        py::array_t<T> out(r == Reduction::None ? shape_of(p) : shape_t{0});
        T* op = r == Reduction::None ? out.mutable_data() : nullptr;
        const T* pp = p.data();
        const T* tp = t.data();
        double v;
        {
            py::gil_scoped_release nogil;
            v = kernel(op, pp, tp, idx(p.size()), r);
        }
        return loss_result(out, v, r);
    });
}

// kernel(dpred, pred, target, n, reduction)
template <typename K>
py::object elementwise_loss_backward(const ArrayIn& pred_in, const ArrayIn& target_in,
                                     const std::string& reduction, K kernel) {
    const py::array &pred = pred_in.a, &target = target_in.a;
    check_elementwise(pred, target);
    const Reduction r = parse_reduction(reduction);
    return dispatch(pred, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> p(pred), t(target);
        py::array_t<T> g(shape_of(p));
        T* gp = g.mutable_data();
        const T* pp = p.data();
        const T* tp = t.data();
        {
            py::gil_scoped_release nogil;
            kernel(gp, pp, tp, idx(p.size()), r);
        }
        return std::move(g);
    });
}

// ---- cross_entropy ----------------------------------------------------------------------

py::object cross_entropy(const ArrayIn& pred_in, const ArrayIn& target_in, bool from_logits,
                         const std::string& reduction, bool backward) {
    const py::array &pred = pred_in.a, &target = target_in.a;
    require_input(pred, "pred");
    require_ndim(pred, "pred", 2);
    require_numeric(target, "target");
    const Reduction r = parse_reduction(reduction);
    const idx N = pred.shape(0), C = pred.shape(1);
    const bool soft = target.ndim() == 2;
    ids_array ids;
    if (soft)
        require_same_shape(target, "target", pred, "pred");
    else
        ids = class_ids(target, N, C);
    return dispatch(pred, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> p(pred);
        carray<T> t = soft ? carray<T>(target) : carray<T>(shape_t{0});
        const T* pp = p.data();
        const T* tp = t.data();
        const std::int64_t* ip = soft ? nullptr : ids.data();
        if (backward) {
            py::array_t<T> g(shape_of(p));
            T* gp = g.mutable_data();
            {
                py::gil_scoped_release nogil;
                if (soft)
                    pycvnn::cross_entropy_backward(gp, pp, tp, N, C, from_logits, r);
                else
                    pycvnn::cross_entropy_backward(gp, pp, ip, N, C, from_logits, r);
            }
            return std::move(g);
        }
        py::array_t<T> out(r == Reduction::None ? shape_t{N} : shape_t{0});
        T* op = r == Reduction::None ? out.mutable_data() : nullptr;
        double v;
        {
            py::gil_scoped_release nogil;
            v = soft ? pycvnn::cross_entropy_forward(op, pp, tp, N, C, from_logits, r)
                     : pycvnn::cross_entropy_forward(op, pp, ip, N, C, from_logits, r);
        }
        return loss_result(out, v, r);
    });
}

// ---- binary_cross_entropy ---------------------------------------------------------------

// Binary outputs: pred (N,) or (N, 1).
void require_binary_pred(const py::array& pred) {
    if (!(pred.ndim() == 1 || (pred.ndim() == 2 && pred.shape(1) == 1)))
        fail("pred", "shape (N,) or (N, 1)", "shape " + shape_str(pred));
}

py::object binary_cross_entropy(const ArrayIn& pred_in, const ArrayIn& target_in, bool from_logits,
                                const std::string& reduction, bool backward) {
    const py::array &pred = pred_in.a, &target = target_in.a;
    require_input(pred, "pred");
    require_binary_pred(pred);
    require_numeric(target, "target");
    require_same_shape(target, "target", pred, "pred");
    const Reduction r = parse_reduction(reduction);
    const idx N = pred.shape(0);
    return dispatch(pred, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> p(pred), t(target);
        require_values_in(t, "target", false);
        const T* pp = p.data();
        const T* tp = t.data();
        if (backward) {
            py::array_t<T> g(shape_of(p));
            T* gp = g.mutable_data();
            {
                py::gil_scoped_release nogil;
                pycvnn::binary_cross_entropy_backward(gp, pp, tp, N, from_logits, r);
            }
            return std::move(g);
        }
        py::array_t<T> out(r == Reduction::None ? shape_t{N} : shape_t{0});
        T* op = r == Reduction::None ? out.mutable_data() : nullptr;
        double v;
        {
            py::gil_scoped_release nogil;
            v = pycvnn::binary_cross_entropy_forward(op, pp, tp, N, from_logits, r);
        }
        return loss_result(out, v, r);
    });
}

// ---- hinge / squared_hinge --------------------------------------------------------------

py::object hinge(const ArrayIn& pred_in, const ArrayIn& target_in, const std::string& reduction,
                 bool squared, bool backward) {
    const py::array &pred = pred_in.a, &target = target_in.a;
    require_input(pred, "pred");
    require_numeric(target, "target");
    const bool binary = pred.ndim() == 1 || (pred.ndim() == 2 && pred.shape(1) == 1);
    if (!binary && pred.ndim() != 2)
        fail("pred", "scores of shape (N,), (N, 1) or (N, C)", "shape " + shape_str(pred));
    const Reduction r = parse_reduction(reduction);
    const idx N = pred.shape(0), C = binary ? 1 : pred.shape(1);
    ids_array ids;
    if (binary)
        require_same_shape(target, "target", pred, "pred");
    else
        ids = class_ids(target, N, C);
    return dispatch(pred, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> p(pred);
        carray<T> t = binary ? carray<T>(target) : carray<T>(shape_t{0});
        if (binary) require_values_in(t, "target", true);
        const T* pp = p.data();
        const T* tp = t.data();
        const std::int64_t* ip = binary ? nullptr : ids.data();
        if (backward) {
            py::array_t<T> g(shape_of(p));
            T* gp = g.mutable_data();
            {
                py::gil_scoped_release nogil;
                if (binary)
                    pycvnn::hinge_binary_backward(gp, pp, tp, N, squared, r);
                else
                    pycvnn::hinge_multiclass_backward(gp, pp, ip, N, C, squared, r);
            }
            return std::move(g);
        }
        py::array_t<T> out(r == Reduction::None ? shape_t{N} : shape_t{0});
        T* op = r == Reduction::None ? out.mutable_data() : nullptr;
        double v;
        {
            py::gil_scoped_release nogil;
            v = binary ? pycvnn::hinge_binary_forward(op, pp, tp, N, squared, r)
                       : pycvnn::hinge_multiclass_forward(op, pp, ip, N, C, squared, r);
        }
        return loss_result(out, v, r);
    });
}

// ---- dice -------------------------------------------------------------------------------

py::object dice(const ArrayIn& pred_in, const ArrayIn& target_in, double smooth,
                const std::string& reduction, bool backward) {
    const py::array &pred = pred_in.a, &target = target_in.a;
    require_input(pred, "pred");
    require_min_ndim(pred, "pred", 1);
    require_numeric(target, "target");
    require_same_shape(target, "target", pred, "pred");
    require_at_least(smooth, "smooth", 0.0, false);
    const Reduction r = parse_reduction(reduction);
    const idx N = pred.shape(0), M = pred.size() / N;
    return dispatch(pred, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> p(pred), t(target);
        const T* pp = p.data();
        const T* tp = t.data();
        if (backward) {
            py::array_t<T> g(shape_of(p));
            T* gp = g.mutable_data();
            {
                py::gil_scoped_release nogil;
                pycvnn::dice_backward(gp, pp, tp, N, M, T(smooth), r);
            }
            return std::move(g);
        }
        py::array_t<T> out(r == Reduction::None ? shape_t{N} : shape_t{0});
        T* op = r == Reduction::None ? out.mutable_data() : nullptr;
        double v;
        {
            py::gil_scoped_release nogil;
            v = pycvnn::dice_forward(op, pp, tp, N, M, T(smooth), r);
        }
        return loss_result(out, v, r);
    });
}

// ---- dense ------------------------------------------------------------------------------

Activation dense_activation(const std::string& activation, double alpha) {
    const Activation act = parse_activation(activation);
    require_finite(alpha, "alpha");
    // Backward reads f' off the output a: needs a > 0 exactly where z > 0.
    if (act == Activation::LeakyReLU) require_at_least(alpha, "alpha", 0.0, false);
    return act;
}

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

// ---- optimizers: in place, never converted ----------------------------------------------

struct Buffer {
    const char* name;
    const ArrayInOut& in;
    bool written;
};

// The checked in-place buffers, in the order given; f64 selects the double kernel.
struct Buffers {
    std::vector<py::array> arrays;
    bool f64;
    idx n;
    void* w(size_t i) { return arrays[i].mutable_data(); }  // taken with the GIL held
    const void* r(size_t i) const { return arrays[i].data(); }
};

// All buffers: numpy arrays of one float dtype (the first's: float32 or float64, native byte
// order), C-contiguous, of the first's size, non-empty; the written ones writeable, and no
// written buffer shares memory with another (the kernels take __restrict pointers).
Buffers require_inplace(std::initializer_list<Buffer> bufs) {
    Buffers out;
    const Buffer& first = *bufs.begin();
    for (const Buffer& b : bufs) {
        if (!py::isinstance<py::array>(b.in.o))
            throw py::type_error(
                std::string(b.name) + ": expected a numpy.ndarray (" +
                (b.written ? "updated in place" : "read") + "), got " +
                std::string(py::str(py::type::handle_of(b.in.o).attr("__name__"))));
        py::array a = py::reinterpret_borrow<py::array>(b.in.o);
        const py::ssize_t size = native_float_size(a);
        if (out.arrays.empty()) {
            if (!size)
                throw py::type_error(std::string(b.name) +
                                     ": expected a float32 or float64 array, got dtype " +
                                     dtype_str(a));
            require_nonempty(a, b.name);
        } else {
            const py::array& p = out.arrays.front();
            if (size != p.itemsize())
                throw py::type_error(std::string(b.name) + ": expected dtype " + dtype_str(p) +
                                     " (" + first.name + "'s dtype), got " + dtype_str(a));
            if (a.size() != p.size())
                fail(b.name, std::to_string(p.size()) + " elements (" + first.name + "'s size)",
                     std::to_string(a.size()));
        }
        if (!(a.flags() & py::array::c_style))
            fail(b.name, "a C-contiguous array (it is updated in place, never copied)",
                 "a non-contiguous array with strides " + std::string(py::str(a.attr("strides"))));
        if (b.written && !a.writeable()) fail(b.name, "a writeable array", "a read-only array");
        out.arrays.push_back(a);
    }
    size_t i = 0;
    for (const Buffer& b : bufs) {
        const char* lo = static_cast<const char*>(out.arrays[i].data());
        const char* hi = lo + out.arrays[i].nbytes();
        size_t j = 0;
        for (const Buffer& o : bufs) {
            const char* olo = static_cast<const char*>(out.arrays[j].data());
            const char* ohi = olo + out.arrays[j].nbytes();
            if (j != i && (b.written || o.written) && lo < ohi && olo < hi)
                fail(b.name, "an array sharing no memory with " + std::string(o.name),
                     "overlapping arrays");
            ++j;
        }
        ++i;
    }
    out.f64 = out.arrays.front().itemsize() == 8;
    out.n = idx(out.arrays.front().size());
    return out;
}

// Run f(T{}) with T the buffers' dtype, the GIL released.
template <typename F>
void run_inplace(bool f64, F&& f) {
    pycvnn::Pool::Session session;
    py::gil_scoped_release nogil;
    if (f64)
        f(double());
    else
        f(float());
}

void gd_update(const ArrayInOut& param, const ArrayInOut& grad, double lr) {
    Buffers b = require_inplace({{"param", param, true}, {"grad", grad, false}});
    require_at_least(lr, "lr", 0.0, false);
    void* p = b.w(0);
    const void* g = b.r(1);
    run_inplace(b.f64, [&](auto tag) {
        using T = decltype(tag);
        pycvnn::gd_update(static_cast<T*>(p), static_cast<const T*>(g), T(lr), b.n);
    });
}

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

void momentum_update(const ArrayInOut& param, const ArrayInOut& grad, const ArrayInOut& velocity,
                     double lr, double beta, const std::string& form, bool nesterov) {
    Buffers b = require_inplace(
        {{"param", param, true}, {"grad", grad, false}, {"velocity", velocity, true}});
    require_at_least(lr, "lr", 0.0, false);
    require_unit_interval(beta, "beta");
    const pycvnn::MomentumForm f = parse_momentum_form(form, nesterov);
    void* p = b.w(0);
    const void* g = b.r(1);
    void* v = b.w(2);
    run_inplace(b.f64, [&](auto tag) {
        using T = decltype(tag);
        pycvnn::momentum_update(static_cast<T*>(p), static_cast<T*>(v), static_cast<const T*>(g),
                                T(lr), beta, f, nesterov, b.n);
    });
}

void rmsprop_update(const ArrayInOut& param, const ArrayInOut& grad, const ArrayInOut& sq,
                    double lr, double rho, double eps) {
    Buffers b = require_inplace({{"param", param, true}, {"grad", grad, false}, {"sq", sq, true}});
    require_at_least(lr, "lr", 0.0, false);
    require_unit_interval(rho, "rho");
    require_at_least(eps, "eps", 0.0, true);
    void* p = b.w(0);
    const void* g = b.r(1);
    void* s = b.w(2);
    run_inplace(b.f64, [&](auto tag) {
        using T = decltype(tag);
        pycvnn::rmsprop_update(static_cast<T*>(p), static_cast<T*>(s), static_cast<const T*>(g),
                               T(lr), rho, T(eps), b.n);
    });
}

Buffers check_adam(const ArrayInOut& param, const ArrayInOut& grad, const ArrayInOut& m,
                   const ArrayInOut& v, double lr, double beta1, double beta2, double eps,
                   long long t) {
    Buffers b = require_inplace(
        {{"param", param, true}, {"grad", grad, false}, {"m", m, true}, {"v", v, true}});
    require_at_least(lr, "lr", 0.0, false);
    require_unit_interval(beta1, "beta1");
    require_unit_interval(beta2, "beta2");
    require_at_least(eps, "eps", 0.0, true);
    if (t < 1) fail("t", "a step number >= 1", std::to_string(t));
    return b;
}

void adam_update(const ArrayInOut& param, const ArrayInOut& grad, const ArrayInOut& m,
                 const ArrayInOut& v, double lr, double beta1, double beta2, double eps,
                 long long t) {
    Buffers b = check_adam(param, grad, m, v, lr, beta1, beta2, eps, t);
    void* p = b.w(0);
    const void* g = b.r(1);
    void* mp = b.w(2);
    void* vp = b.w(3);
    run_inplace(b.f64, [&](auto tag) {
        using T = decltype(tag);
        pycvnn::adam_update(static_cast<T*>(p), static_cast<T*>(mp), static_cast<T*>(vp),
                            static_cast<const T*>(g), T(lr), beta1, beta2, T(eps), t, b.n);
    });
}

void adamw_update(const ArrayInOut& param, const ArrayInOut& grad, const ArrayInOut& m,
                  const ArrayInOut& v, double lr, double beta1, double beta2, double eps,
                  long long t, double weight_decay) {
    Buffers b = check_adam(param, grad, m, v, lr, beta1, beta2, eps, t);
    require_at_least(weight_decay, "weight_decay", 0.0, false);
    void* p = b.w(0);
    const void* g = b.r(1);
    void* mp = b.w(2);
    void* vp = b.w(3);
    run_inplace(b.f64, [&](auto tag) {
        using T = decltype(tag);
        pycvnn::adamw_update(static_cast<T*>(p), static_cast<T*>(mp), static_cast<T*>(vp),
                             static_cast<const T*>(g), T(lr), beta1, beta2, T(eps), t,
                             T(weight_decay), b.n);
    });
}

void add_weight_decay(const ArrayInOut& grad, const ArrayInOut& param, double weight_decay) {
    Buffers b = require_inplace({{"grad", grad, true}, {"param", param, false}});
    require_at_least(weight_decay, "weight_decay", 0.0, false);
    void* g = b.w(0);
    const void* p = b.r(1);
    run_inplace(b.f64, [&](auto tag) {
        using T = decltype(tag);
        pycvnn::add_weight_decay(static_cast<T*>(g), static_cast<const T*>(p), T(weight_decay),
                                 b.n);
    });
}

// global_norm only reads: any numeric array-like is accepted (float64 stays float64).
double global_norm(const ArrayIn& grad_in) {
    const py::array& grad = grad_in.a;
    require_input(grad, "grad");
    double norm = 0;
    dispatch(grad, [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> g(grad);
        const T* gp = g.data();
        const idx n = g.size();
        {
            py::gil_scoped_release nogil;
            norm = pycvnn::global_norm(gp, n);
        }
        return py::none();
    });
    return norm;
}

double clip_by_global_norm(const ArrayInOut& grad, double max_norm) {
    Buffers b = require_inplace({{"grad", grad, true}});
    require_at_least(max_norm, "max_norm", 0.0, true);
    void* g = b.w(0);
    double norm = 0;
    run_inplace(b.f64, [&](auto tag) {
        using T = decltype(tag);
        norm = pycvnn::clip_by_global_norm(static_cast<T*>(g), max_norm, b.n);
    });
    return norm;
}

// ---- training core: UpdateRule, LossSpec, Network --------------------------------------------

pycvnn::UpdateRule make_update_rule(const std::string& rule, double beta, const std::string& form,
                                    bool nesterov, double rho, double beta1, double beta2,
                                    double eps, double weight_decay, double clip_norm) {
    using pycvnn::Rule;
    pycvnn::UpdateRule r;
    if (rule == "gd")
        r.rule = Rule::GD;
    else if (rule == "momentum")
        r.rule = Rule::Momentum;
    else if (rule == "rmsprop")
        r.rule = Rule::RMSProp;
    else if (rule == "adam")
        r.rule = Rule::Adam;
    else if (rule == "adamw")
        r.rule = Rule::AdamW;
    else
        fail("rule", "one of 'gd', 'momentum', 'rmsprop', 'adam', 'adamw'", "'" + rule + "'");
    r.form = parse_momentum_form(form, nesterov);
    for (auto [v, name] :
         {std::pair{beta, "beta"}, {rho, "rho"}, {beta1, "beta1"}, {beta2, "beta2"}})
        require_unit_interval(v, name);
    require_at_least(eps, "eps", 0.0, true);
    require_at_least(weight_decay, "weight_decay", 0.0, false);
    require_at_least(clip_norm, "clip_norm", 0.0, false);
    r.beta = beta, r.nesterov = nesterov, r.rho = rho, r.beta1 = beta1, r.beta2 = beta2;
    r.eps = eps, r.weight_decay = weight_decay, r.clip_norm = clip_norm;
    return r;
}

// How many optimizer state buffers a rule reads and writes.
int n_state(const pycvnn::UpdateRule& r) {
    using pycvnn::Rule;
    return r.rule == Rule::GD ? 0 : (r.rule == Rule::Adam || r.rule == Rule::AdamW) ? 2 : 1;
}

// The arena and the state buffers the rule uses, checked (one dtype, one size, C-contiguous).
Buffers arena_buffers(const pycvnn::UpdateRule& rule, const ArrayInOut& params,
                      const ArrayInOut& grads, const ArrayInOut& state1, const ArrayInOut& state2) {
    switch (n_state(rule)) {
        case 0: return require_inplace({{"params", params, true}, {"grads", grads, true}});
        case 1:
            return require_inplace(
                {{"params", params, true}, {"grads", grads, true}, {"state1", state1, true}});
        default:
            return require_inplace({{"params", params, true},
                                    {"grads", grads, true},
                                    {"state1", state1, true},
                                    {"state2", state2, true}});
    }
}

template <typename T>
T* state_ptr(Buffers& b, size_t i) {
    return b.arrays.size() > i ? static_cast<T*>(b.w(i)) : nullptr;
}

void update_rule_step(const pycvnn::UpdateRule& rule, const ArrayInOut& params,
                      const ArrayInOut& grads, const ArrayInOut& state1, const ArrayInOut& state2,
                      long long n_decay, double lr, long long t) {
    Buffers b = arena_buffers(rule, params, grads, state1, state2);
    if (n_decay < 0 || n_decay > b.n)
        fail("n_decay", "a count in [0, " + std::to_string(b.n) + "]", std::to_string(n_decay));
    require_at_least(lr, "lr", 0.0, false);
    if (t < 1) fail("t", "a step number >= 1", std::to_string(t));
    run_inplace(b.f64, [&](auto tag) {
        using T = decltype(tag);
        rule.step(static_cast<T*>(b.w(0)), static_cast<T*>(b.w(1)), state_ptr<T>(b, 2),
                  state_ptr<T>(b, 3), b.n, idx(n_decay), lr, t);
    });
}

// A loss by name with its options. value/grad from Python call the loss kernels' own bindings
// (so the checks are the same); train_epoch uses `spec` directly.
struct PyLossSpec {
    std::string name;
    pycvnn::LossSpec spec;
    py::dict options() const {
        py::dict d;
        if (name == "huber") d["delta"] = spec.delta;
        if (name == "dice") d["smooth"] = spec.smooth;
        if (name == "cross_entropy" || name == "binary_cross_entropy")
            d["from_logits"] = spec.from_logits;
        return d;
    }
    py::object call(const char* suffix, py::object pred, py::object target) const {
        return py::module_::import("pycvnn._core")
            .attr((name + suffix).c_str())(pred, target, **options());
    }
};

PyLossSpec make_loss_spec(const std::string& name, double delta, double smooth, bool from_logits) {
    using pycvnn::LossKind;
    static const std::pair<const char*, LossKind> kinds[] = {
        {"l1", LossKind::L1},
        {"l2", LossKind::L2},
        {"huber", LossKind::Huber},
        {"cross_entropy", LossKind::CrossEntropy},
        {"binary_cross_entropy", LossKind::BinaryCrossEntropy},
        {"hinge", LossKind::Hinge},
        {"squared_hinge", LossKind::SquaredHinge},
        {"dice", LossKind::Dice}};
    for (auto& [n, kind] : kinds) {
        if (name != n) continue;
        require_at_least(delta, "delta", 0.0, true);
        require_at_least(smooth, "smooth", 0.0, false);
        return PyLossSpec{name, pycvnn::LossSpec{kind, delta, smooth, from_logits}};
    }
    fail("name",
         "one of 'l1', 'l2', 'huber', 'cross_entropy', 'binary_cross_entropy', 'hinge', "
         "'squared_hinge', 'dice'",
         "'" + name + "'");
}

// One network's workspaces, both precisions. A call takes an idle workspace (or makes one)
// and gives it back, so concurrent calls never share one; a forward that backward may follow
// stays with its thread (with the input it read) until that thread's next forward. At most
// kKept threads keep one: the least recently used is dropped past that.
constexpr size_t kKept = 16;

struct PyNetwork {
    std::vector<pycvnn::Op> ops;
    idx n_params = 0, n_decay = 0, max_width = 0;
    std::mutex mu;  // the idle lists and kept
    std::vector<std::unique_ptr<pycvnn::Network<float>>> idle32;
    std::vector<std::unique_ptr<pycvnn::Network<double>>> idle64;
    struct Kept {
        std::uint64_t thread;  // thread_token() of the thread that made it
        std::unique_ptr<pycvnn::Network<float>> f32;
        std::unique_ptr<pycvnn::Network<double>> f64;
        py::object x;  // the forward's input: its workspace points into it
        idx n = 0;
    };
    std::list<Kept> kept;  // most recently used first

    // The thread's kept forward (an empty list if none), taken out of `kept`.
    std::list<Kept> take_kept(std::uint64_t thread) {
        std::list<Kept> out;
        std::lock_guard<std::mutex> lk(mu);
        for (auto it = kept.begin(); it != kept.end(); ++it)
            if (it->thread == thread) {
                out.splice(out.end(), kept, it);
                break;
            }
        return out;
    }

    template <typename T>
    std::vector<std::unique_ptr<pycvnn::Network<T>>>& idle() {
        if constexpr (std::is_same_v<T, float>)
            return idle32;
        else
            return idle64;
    }
    template <typename T>
    std::unique_ptr<pycvnn::Network<T>> take() {
        {
            std::lock_guard<std::mutex> lk(mu);
            auto& v = idle<T>();
            if (!v.empty()) {
                auto n = std::move(v.back());
                v.pop_back();
                return n;
            }
        }
        return std::make_unique<pycvnn::Network<T>>(ops);
    }
    template <typename T>
    void give(std::unique_ptr<pycvnn::Network<T>> n) {
        if (!n) return;
        std::lock_guard<std::mutex> lk(mu);
        idle<T>().push_back(std::move(n));
    }
};

// This thread's number, never reused by a later thread (unlike a thread id), so a new thread
// never finds a dead one's kept forward.
std::uint64_t thread_token() {
    static std::atomic<std::uint64_t> next{1};
    thread_local const std::uint64_t token = next.fetch_add(1);
    return token;
}

// A workspace taken for one call, given back when the call ends (also on an exception).
template <typename T>
struct Lease {
    PyNetwork& owner;
    std::unique_ptr<pycvnn::Network<T>> net;
    explicit Lease(PyNetwork& o) : owner(o), net(o.take<T>()) {}
    ~Lease() {
        try {
            owner.give(std::move(net));
        } catch (const std::bad_alloc&) {  // no room to keep it idle: let it go
        }
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
};

// a * b, or a ValueError naming `name` if it overflows idx.
idx checked_mul(idx a, idx b, const std::string& name) {
    idx r;
    if (__builtin_mul_overflow(a, b, &r))
        fail(name, "sizes whose product fits in 64 bits",
             std::to_string(a) + " x " + std::to_string(b));
    return r;
}
idx checked_add(idx a, idx b, const std::string& name) {
    idx r;
    if (__builtin_add_overflow(a, b, &r))
        fail(name, "sizes whose sum fits in 64 bits",
             std::to_string(a) + " + " + std::to_string(b));
    return r;
}

PyNetwork* make_network(const py::list& ops_in) {
    auto n = std::make_unique<PyNetwork>();
    idx width = -1, n_w = 0, n_b = 0;
    for (size_t i = 0; i < ops_in.size(); ++i) {
        const std::string where = "ops[" + std::to_string(i) + "]";
        auto t =
            ops_in[i].cast<std::tuple<std::string, long long, long long, std::string, double>>();
        auto [kind, in, out, act, alpha] = t;
        if (kind != "dense" && kind != "act")
            fail(where, "kind 'dense' or 'act'", "'" + kind + "'");
        if (in < 1 || out < 1 || (kind == "act" && in != out) || (width >= 0 && in != width))
            fail(where, "sizes that chain (previous width " + std::to_string(width) + ")",
                 "(" + std::to_string(in) + ", " + std::to_string(out) + ")");
        if (in > INT_MAX || out > INT_MAX)  // the GEMM takes int sizes
            fail(where, "sizes below 2^31",
                 "(" + std::to_string(in) + ", " + std::to_string(out) + ")");
        const Activation a = dense_activation(act, alpha);
        if (kind == "dense") {
            n_w = checked_add(n_w, checked_mul(idx(in), idx(out), where), "ops");
            n_b = checked_add(n_b, idx(out), "ops");
        }
        n->ops.push_back(pycvnn::Op{kind == "dense", idx(in), idx(out), a, alpha});
        n->max_width = std::max<idx>({n->max_width, idx(in), idx(out)});
        width = out;
    }
    if (n->ops.empty()) fail("ops", "at least one op", "none");
    n->n_params = checked_add(n_w, n_b, "ops");
    if (n->n_params > PTRDIFF_MAX / idx(sizeof(double)))
        fail("ops", "a network whose parameters fit in memory",
             std::to_string(n->n_params) + " parameters");
    n->n_decay = n_w;
    return n.release();
}

void require_arena(const py::array& params, const char* name, idx n) {
    if (params.ndim() != 1 || params.size() != n)
        fail(name, "a flat arena of " + std::to_string(n) + " elements",
             "shape " + shape_str(params));
}

// A workspace for N rows must have a size that fits in memory's address range (it is about
// 5 N max_width values): a ValueError naming `name` rather than an overflowed allocation.
void require_workspace(const PyNetwork& self, idx N, const char* name) {
    const idx values = checked_mul(checked_mul(N, self.max_width, name), 8, name);
    if (values > PTRDIFF_MAX / idx(sizeof(double)))
        fail(name, "a batch whose workspace fits in memory", std::to_string(N) + " rows");
}

py::object network_forward(PyNetwork& self, const ArrayInOut& params_in, const ArrayIn& x_in,
                           bool keep) {
    pycvnn::Pool::Session session;
    Buffers b = require_inplace({{"params", params_in, false}});
    const py::array& x = x_in.a;
    require_arena(b.arrays[0], "params", self.n_params);
    require_input(x, "x");
    require_ndim(x, "x", 2);
    require_dim(x, "x", 1, self.ops.front().in, "in_features");
    require_int_sizes(x, "x");
    const idx N = x.shape(0), out = self.ops.back().out;
    require_workspace(self, N, "x");
    auto run = [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> X(x);
        py::array_t<T> a({N, out});
        const T* p = static_cast<const T*>(b.r(0));
        const T* xp = X.data();
        T* ap = a.mutable_data();
        Lease<T> lease(self);
        {
            py::gil_scoped_release nogil;
            const T* res = lease.net->forward(p, xp, N);
            std::copy(res, res + N * out, ap);
        }
        if (keep) {  // this thread's pass for backward; its previous one goes back
            const auto me = thread_token();
            PyNetwork::Kept k;
            k.thread = me, k.x = X, k.n = N;
            if constexpr (std::is_same_v<T, float>)
                k.f32 = std::move(lease.net);
            else
                k.f64 = std::move(lease.net);
            std::list<PyNetwork::Kept> dropped = self.take_kept(me);
            {
                std::lock_guard<std::mutex> lk(self.mu);
                self.kept.push_front(std::move(k));
                if (self.kept.size() > kKept)
                    dropped.splice(dropped.end(), self.kept, std::prev(self.kept.end()));
            }
            for (auto& d : dropped) {
                self.give(std::move(d.f32));
                self.give(std::move(d.f64));
            }
        }
        return std::move(a);
    };
    return b.f64 ? run(double()) : run(float());
}

py::object network_backward(PyNetwork& self, const ArrayInOut& params_in,
                            const ArrayInOut& grads_in, const ArrayIn& dout_in) {
    pycvnn::Pool::Session session;
    Buffers b = require_inplace({{"params", params_in, false}, {"grads", grads_in, true}});
    require_arena(b.arrays[0], "params", self.n_params);
    // This thread's last kept forward, taken out of the list while it runs (a backward on
    // another thread never sees it) and put back after.
    const auto me = thread_token();
    std::list<PyNetwork::Kept> mine = self.take_kept(me);
    struct PutBack {
        PyNetwork& self;
        std::list<PyNetwork::Kept>& mine;
        ~PutBack() {
            std::lock_guard<std::mutex> lk(self.mu);
            self.kept.splice(self.kept.begin(), mine);
        }
    } put_back{self, mine};
    if (mine.empty() || (b.f64 ? !mine.front().f64 : !mine.front().f32))
        fail("backward", "a forward pass of the same dtype on this thread first", "none");
    const py::array& dout = dout_in.a;
    const idx N = mine.front().n, in = self.ops.front().in, out = self.ops.back().out;
    require_input(dout, "dout");
    require_ndim(dout, "dout", 2);
    if (dout.shape(0) != N || dout.shape(1) != out)
        fail("dout",
             "shape (" + std::to_string(N) + ", " + std::to_string(out) + ") (the forward output)",
             shape_str(dout));
    auto run = [&](auto tag) -> py::object {
        using T = decltype(tag);
        carray<T> D(dout);
        py::array_t<T> dx({N, in});
        const T* p = static_cast<const T*>(b.r(0));
        T* g = static_cast<T*>(b.w(1));
        const T* dp = D.data();
        T* dxp = dx.mutable_data();
        pycvnn::Network<T>* net;
        if constexpr (std::is_same_v<T, float>)
            net = mine.front().f32.get();
        else
            net = mine.front().f64.get();
        {
            py::gil_scoped_release nogil;
            const T* res = net->backward(p, g, dp, N, true);
            std::copy(res, res + N * in, dxp);
        }
        return std::move(dx);
    };
    return b.f64 ? run(double()) : run(float());
}

// Ctrl-C during train_epoch. Python's own SIGINT handler only flags the signal for the
// interpreter, which cannot act while the GIL is released; this one, installed around the
// epoch loop in front of Python's (and passing every signal on to it), also counts it, and
// the loop stops between batches when the count moves.
namespace sigint {
std::atomic<unsigned> count{0};
std::mutex mu;
int users = 0;
struct sigaction python;  // the handler found at the first install, which ours passes on to
bool known = false;

void handler(int sig, siginfo_t* info, void* context) {
    count.fetch_add(1, std::memory_order_relaxed);
    if (python.sa_flags & SA_SIGINFO) {
        if (python.sa_sigaction) python.sa_sigaction(sig, info, context);
    } else if (python.sa_handler != SIG_DFL && python.sa_handler != SIG_IGN) {
        python.sa_handler(sig);
    }
}

bool same(const struct sigaction& a, const struct sigaction& b) {
    return (a.sa_flags & SA_SIGINFO) == (b.sa_flags & SA_SIGINFO) &&
           ((a.sa_flags & SA_SIGINFO) ? a.sa_sigaction == b.sa_sigaction
                                      : a.sa_handler == b.sa_handler);
}

// Installs the handler while alive, in front of the handler it first found there (Python's),
// and only there: never in front of SIG_IGN or SIG_DFL (which ends the process at once), nor
// in front of a handler someone put in its place (which may pass signals on to ours).
struct Watch {
    bool on = false;
    Watch() {
        std::lock_guard<std::mutex> lk(mu);
        if (users == 0) {
            struct sigaction current;
            if (sigaction(SIGINT, nullptr, &current) != 0) return;
            const bool plain = !(current.sa_flags & SA_SIGINFO);
            if (plain && (current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN)) return;
            if (known && !same(current, python)) return;
            struct sigaction mine{};
            mine.sa_sigaction = &handler;
            mine.sa_flags = SA_SIGINFO | (current.sa_flags & (SA_ONSTACK | SA_RESTART));
            mine.sa_mask = current.sa_mask;
            if (!known) python = current, known = true;
            if (sigaction(SIGINT, &mine, nullptr) != 0) return;
        }
        ++users;
        on = true;
    }
    ~Watch() {
        if (!on) return;
        std::lock_guard<std::mutex> lk(mu);
        if (--users > 0) return;
        struct sigaction current;
        // Put Python's back, unless someone replaced ours meanwhile.
        if (sigaction(SIGINT, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
            current.sa_sigaction == &handler)
            sigaction(SIGINT, &python, nullptr);
    }
};
}  // namespace sigint

// The optimizer's step count: an int (read only) or a writeable int64 array of shape (1,),
// advanced in place by the steps taken, so that it always matches the weights, even when
// the call ends in KeyboardInterrupt.
struct StepCount {
    long long value = 0;
    std::int64_t* out = nullptr;
    py::object keep;
};

StepCount step_count(const py::object& t) {
    StepCount s;
    if (py::isinstance<py::array>(t)) {
        py::array a = py::reinterpret_borrow<py::array>(t);
        if (a.dtype().kind() != 'i' || a.itemsize() != 8 || a.ndim() != 1 || a.size() != 1 ||
            !a.writeable())
            fail("t", "an int or a writeable int64 array of shape (1,)",
                 dtype_str(a) + " array of shape " + shape_str(a));
        s.out = static_cast<std::int64_t*>(a.mutable_data());
        s.value = *s.out;
        s.keep = a;
    } else {
        try {
            s.value = py::cast<long long>(t);
        } catch (const py::cast_error&) {
            fail("t", "an int or a writeable int64 array of shape (1,)", std::string(py::repr(t)));
        }
    }
    if (s.value < 0) fail("t", "the number of steps taken (>= 0)", std::to_string(s.value));
    return s;
}

py::array_t<double> network_train_epoch(PyNetwork& self, const ArrayInOut& params,
                                        const ArrayInOut& grads, const ArrayInOut& state1,
                                        const ArrayInOut& state2, const ArrayIn& x_in,
                                        const ArrayIn& y_in, const ArrayIn& order_in,
                                        long long batch_size, double lr, const py::object& t_in,
                                        const PyLossSpec& loss, const pycvnn::UpdateRule& rule) {
    pycvnn::Pool::Session session;
    Buffers b = arena_buffers(rule, params, grads, state1, state2);
    require_arena(b.arrays[0], "params", self.n_params);
    const py::array &x = x_in.a, &y = y_in.a, &order = order_in.a;
    const idx in = self.ops.front().in, C = self.ops.back().out;
    require_input(x, "x");
    require_ndim(x, "x", 2);
    require_dim(x, "x", 1, in, "in_features");
    require_int_sizes(x, "x");
    const idx rows = x.shape(0);
    require_input(y, "y");
    {
        using pycvnn::LossKind;
        const LossKind k = loss.spec.kind;
        if (k == LossKind::BinaryCrossEntropy && C != 1)
            fail("loss", "a network of one output for 'binary_cross_entropy'",
                 std::to_string(C) + " outputs");
        if (k == LossKind::CrossEntropy && C < 2)
            fail("loss", "a network of at least two outputs for 'cross_entropy'", "1 output");
    }
    const bool ids = is_integer(y);
    if (ids) {
        using pycvnn::LossKind;
        const LossKind k = loss.spec.kind;
        if (!(k == LossKind::CrossEntropy ||
              ((k == LossKind::Hinge || k == LossKind::SquaredHinge) && C > 1)))
            fail("y",
                 "float targets of shape (" + std::to_string(rows) + ", " + std::to_string(C) +
                     ") for loss '" + loss.name + "'",
                 "integer class ids");
    } else {
        const bool flat_ok = y.ndim() == 1 && C == 1 && y.shape(0) == rows;
        if (!flat_ok && !(y.ndim() == 2 && y.shape(0) == rows && y.shape(1) == C))
            fail("y", "targets of shape (" + std::to_string(rows) + ", " + std::to_string(C) + ")",
                 "shape " + shape_str(y));
    }
    ids_array Y_ids = ids ? class_ids(y, rows, C, false) : ids_array();
    require_input(order, "order");
    if (!is_integer(order) || order.ndim() != 1)
        fail("order", "a 1-d integer array of row indices",
             dtype_str(order) + " array of shape " + shape_str(order));
    if (batch_size < 1) fail("batch_size", "an int >= 1", std::to_string(batch_size));
    require_at_least(lr, "lr", 0.0, false);
    StepCount t = step_count(t_in);
    // The order and the class ids it visits are copied here, checked as they are copied: with
    // the GIL released another thread may write into the caller's arrays, and what the loop
    // reads must stay what was checked. Only the rows in the order are read, so a call costs
    // O(order), not O(rows) (fit makes several calls an epoch).
    ids_array O(order);
    const idx n_order = O.size();
    std::vector<std::int64_t> order_copy(O.data(), O.data() + n_order), ids_copy;
    if (ids) ids_copy.resize(size_t(n_order));
    const std::int64_t* all_ids = ids ? Y_ids.data() : nullptr;
    for (idx i = 0; i < n_order; ++i) {
        const std::int64_t r = order_copy[size_t(i)];
        if (r < 0 || r >= rows)
            fail("order", "row indices in [0, " + std::to_string(rows) + ")", std::to_string(r));
        if (ids) {
            const std::int64_t id = all_ids[r];
            require_class_id(id, py::ssize_t(r), C);
            ids_copy[size_t(i)] = id;
        }
    }
    const idx batch = std::min<idx>(idx(batch_size), n_order);  // no overflow past the order's end
    require_workspace(self, batch, "batch_size");
    std::vector<double> losses(size_t(n_order / batch + (n_order % batch != 0)));
    idx ran = 0;
    bool interrupted = false;
    auto run = [&](auto tag) {
        using T = decltype(tag);
        carray<T> X(x);
        carray<T> Y = ids ? carray<T>() : carray<T>(y);
        const T* xp = X.data();
        const T* yp = ids ? nullptr : Y.data();
        T* p = static_cast<T*>(b.w(0));
        T* g = static_cast<T*>(b.w(1));
        T* s1 = state_ptr<T>(b, 2);
        T* s2 = state_ptr<T>(b, 3);
        Lease<T> lease(self);
        sigint::Watch watch;
        // A Ctrl-C from before the watch was in place stops the call before its first batch.
        if (PyErr_CheckSignals() != 0) {
            interrupted = true;
            return;
        }
        for (;;) {
            const unsigned seen = sigint::count.load();
            const idx first = ran * batch;
            idx done;
            {
                py::gil_scoped_release nogil;
                done = lease.net->train_epoch(
                    p, g, s1, s2, xp, yp, ids ? ids_copy.data() + first : nullptr,
                    order_copy.data() + first, n_order - first, batch, lr, t.value + ran, loss.spec,
                    rule, losses.data() + ran, &sigint::count, seen);
            }
            const bool finite = done == 0 || std::isfinite(losses[size_t(ran + done - 1)]);
            ran += done;  // the last batch, if its loss is not finite, was not applied
            if (t.out) *t.out = t.value + ran - (finite ? 0 : 1);
            if (!finite || first + done * batch >= n_order) break;
            // Stopped for a signal: Python's handler runs here (KeyboardInterrupt propagates
            // with the weights, the state and t all after the same step); a handler that
            // returns lets the epoch go on.
            if (PyErr_CheckSignals() != 0) {
                interrupted = true;
                break;
            }
        }
    };
    if (b.f64)
        run(double());
    else
        run(float());
    if (interrupted) throw py::error_already_set();
    return py::array_t<double>(py::ssize_t(ran), losses.data());
}

// A Session opened and closed from Python (a with-block on one thread).
struct ThreadSession {
    std::unique_ptr<pycvnn::Pool::Session> session;
    void enter() {
        if (session) fail("ThreadSession", "a session not already entered", "a nested __enter__");
        session = std::make_unique<pycvnn::Pool::Session>();
    }
    void exit() {
        if (session && session->owner() != std::this_thread::get_id())
            fail("ThreadSession", "__exit__ on the thread that entered it", "another thread");
        session.reset();
    }
};

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "pycvnn's compiled core (see pycvnn.reference for the NumPy twin)";
    m.attr("__version__") = PYCVNN_VERSION;

    m.def("_blas_load", &pycvnn::blas_load, "Resolve the BLAS symbols; False if none are loaded.");
    m.def("_blas_name", &pycvnn::blas_name);
    pycvnn::Pool::instance().set_resize_hook(&pycvnn::blas_set_num_threads);
    m.def(
        "_set_num_threads",
        [](int n) {
            if (n < 1 || n > 1024) fail("n", "a thread count from 1 to 1024", std::to_string(n));
            pycvnn::Pool::instance().request_threads(n);
        },
        py::arg("n"),
        "Threads of the whole core (OpenBLAS's and the core's own pool), applied "
        "once no call into the core is running.");
    m.def("_get_num_threads", []() { return pycvnn::Pool::instance().requested(); });
    m.def("_blas_num_threads", &pycvnn::blas_get_num_threads, "OpenBLAS's own thread count.");
    py::class_<ThreadSession>(m, "ThreadSession",
                              "`with ThreadSession():` pins the thread count for the block's calls "
                              "on this thread (fit holds one for its whole run).")
        .def(py::init<>())
        .def(
            "__enter__",
            [](ThreadSession& s) {
                s.enter();
                return &s;
            },
            py::return_value_policy::reference)
        .def(
            "__exit__",
            [](ThreadSession& s, const py::object&, const py::object&, const py::object&) {
                s.exit();
                return false;
            },
            py::arg("exc_type"), py::arg("exc_value"), py::arg("traceback"));
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

    // ---- losses ----
    m.def(
        "l1_forward",
        [](const ArrayIn& pred, const ArrayIn& target, const std::string& reduction) {
            return elementwise_loss_forward(
                pred, target, reduction,
                [](auto* o, const auto* p, const auto* t, idx n, Reduction r) {
                    return pycvnn::l1_forward(o, p, t, n, r);
                });
        },
        py::arg("pred"), py::arg("target"), py::arg("reduction") = "mean");
    m.def(
        "l1_backward",
        [](const ArrayIn& pred, const ArrayIn& target, const std::string& reduction) {
            return elementwise_loss_backward(
                pred, target, reduction,
                [](auto* g, const auto* p, const auto* t, idx n, Reduction r) {
                    pycvnn::l1_backward(g, p, t, n, r);
                });
        },
        py::arg("pred"), py::arg("target"), py::arg("reduction") = "mean",
        "sign(pred - target), 0 at pred == target; divided by pred.size for \"mean\".");
    m.def(
        "l2_forward",
        [](const ArrayIn& pred, const ArrayIn& target, const std::string& reduction) {
            return elementwise_loss_forward(
                pred, target, reduction,
                [](auto* o, const auto* p, const auto* t, idx n, Reduction r) {
                    return pycvnn::l2_forward(o, p, t, n, r);
                });
        },
        py::arg("pred"), py::arg("target"), py::arg("reduction") = "mean", "(pred - target)^2.");
    m.def(
        "l2_backward",
        [](const ArrayIn& pred, const ArrayIn& target, const std::string& reduction) {
            return elementwise_loss_backward(
                pred, target, reduction,
                [](auto* g, const auto* p, const auto* t, idx n, Reduction r) {
                    pycvnn::l2_backward(g, p, t, n, r);
                });
        },
        py::arg("pred"), py::arg("target"), py::arg("reduction") = "mean",
        "2 (pred - target); divided by pred.size for \"mean\".");
    m.def(
        "huber_forward",
        [](const ArrayIn& pred, const ArrayIn& target, double delta, const std::string& reduction) {
            require_at_least(delta, "delta", 0.0, true);
            return elementwise_loss_forward(
                pred, target, reduction,
                [delta](auto* o, const auto* p, const auto* t, idx n, Reduction r) {
                    return pycvnn::huber_forward(o, p, t, n, elem_t<decltype(o)>(delta), r);
                });
        },
        py::arg("pred"), py::arg("target"), py::arg("delta") = 1.0, py::arg("reduction") = "mean",
        "0.5 r^2 if |r| <= delta else delta (|r| - 0.5 delta), r = pred - target; delta > 0.");
    m.def(
        "huber_backward",
        [](const ArrayIn& pred, const ArrayIn& target, double delta, const std::string& reduction) {
            require_at_least(delta, "delta", 0.0, true);
            return elementwise_loss_backward(
                pred, target, reduction,
                [delta](auto* g, const auto* p, const auto* t, idx n, Reduction r) {
                    pycvnn::huber_backward(g, p, t, n, elem_t<decltype(g)>(delta), r);
                });
        },
        py::arg("pred"), py::arg("target"), py::arg("delta") = 1.0, py::arg("reduction") = "mean");

    // The class-target losses: one function each, forward or backward by a flag.
    using Str = const std::string&;
    m.def(
        "cross_entropy_forward",
        [](const ArrayIn& p, const ArrayIn& t, bool from_logits, Str r) {
            return cross_entropy(p, t, from_logits, r, false);
        },
        py::arg("pred"), py::arg("target"), py::arg("from_logits") = true,
        py::arg("reduction") = "mean");
    m.def(
        "cross_entropy_backward",
        [](const ArrayIn& p, const ArrayIn& t, bool from_logits, Str r) {
            return cross_entropy(p, t, from_logits, r, true);
        },
        py::arg("pred"), py::arg("target"), py::arg("from_logits") = true,
        py::arg("reduction") = "mean",
        "From logits: softmax(pred) * sum_c(target_c) - target (p - onehot for class ids).\n"
        "From probabilities: -target / min(p, 1) where p > eps, 0 where p <= eps.");
    m.def(
        "binary_cross_entropy_forward",
        [](const ArrayIn& p, const ArrayIn& t, bool from_logits, Str r) {
            return binary_cross_entropy(p, t, from_logits, r, false);
        },
        py::arg("pred"), py::arg("target"), py::arg("from_logits") = true,
        py::arg("reduction") = "mean");
    m.def(
        "binary_cross_entropy_backward",
        [](const ArrayIn& p, const ArrayIn& t, bool from_logits, Str r) {
            return binary_cross_entropy(p, t, from_logits, r, true);
        },
        py::arg("pred"), py::arg("target"), py::arg("from_logits") = true,
        py::arg("reduction") = "mean");
    m.def(
        "hinge_forward",
        [](const ArrayIn& p, const ArrayIn& t, Str r) { return hinge(p, t, r, false, false); },
        py::arg("pred"), py::arg("target"), py::arg("reduction") = "mean");
    m.def(
        "hinge_backward",
        [](const ArrayIn& p, const ArrayIn& t, Str r) { return hinge(p, t, r, false, true); },
        py::arg("pred"), py::arg("target"), py::arg("reduction") = "mean");
    m.def(
        "squared_hinge_forward",
        [](const ArrayIn& p, const ArrayIn& t, Str r) { return hinge(p, t, r, true, false); },
        py::arg("pred"), py::arg("target"), py::arg("reduction") = "mean");
    m.def(
        "squared_hinge_backward",
        [](const ArrayIn& p, const ArrayIn& t, Str r) { return hinge(p, t, r, true, true); },
        py::arg("pred"), py::arg("target"), py::arg("reduction") = "mean");
    m.def(
        "dice_forward",
        [](const ArrayIn& p, const ArrayIn& t, double smooth, Str r) {
            return dice(p, t, smooth, r, false);
        },
        py::arg("pred"), py::arg("target"), py::arg("smooth") = 1e-6,
        py::arg("reduction") = "mean");
    m.def(
        "dice_backward",
        [](const ArrayIn& p, const ArrayIn& t, double smooth, Str r) {
            return dice(p, t, smooth, r, true);
        },
        py::arg("pred"), py::arg("target"), py::arg("smooth") = 1e-6,
        py::arg("reduction") = "mean");

    // ---- dense ----
    m.def("dense_forward", &dense_forward, py::arg("x"), py::arg("w"), py::arg("b"),
          py::arg("activation") = "none", py::arg("alpha") = 0.01,
          "a = f(x w^T + b) (N, out); bias and activation fused in one pass.");
    m.def("dense_backward", &dense_backward, py::arg("dout"), py::arg("x"), py::arg("w"),
          py::arg("a"), py::arg("activation") = "none", py::arg("alpha") = 0.01,
          py::arg("z") = py::none(),
          "(dx, dw, db) from dout = d loss / d a, the forward's output a and, for an activation "
          "whose derivative needs it (gelu), its input z = x w^T + b.");

    // ---- optimizers ----
    m.def("gd_update", &gd_update, py::arg("param"), py::arg("grad"), py::arg("lr"),
          "param -= lr * grad.");
    m.def("momentum_update", &momentum_update, py::arg("param"), py::arg("grad"),
          py::arg("velocity"), py::arg("lr"), py::arg("beta") = 0.9, py::arg("form") = "ema",
          py::arg("nesterov") = false);
    m.def("rmsprop_update", &rmsprop_update, py::arg("param"), py::arg("grad"), py::arg("sq"),
          py::arg("lr"), py::arg("rho") = 0.9, py::arg("eps") = 1e-8);
    m.def("adam_update", &adam_update, py::arg("param"), py::arg("grad"), py::arg("m"),
          py::arg("v"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
          py::arg("t"));
    m.def("adamw_update", &adamw_update, py::arg("param"), py::arg("grad"), py::arg("m"),
          py::arg("v"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
          py::arg("t"), py::arg("weight_decay"));
    m.def("add_weight_decay", &add_weight_decay, py::arg("grad"), py::arg("param"),
          py::arg("weight_decay"), "Coupled L2, in place: grad += weight_decay * param.");
    m.def("global_norm", &global_norm, py::arg("grad"),
          "sqrt(sum(grad^2)) over the flat buffer, accumulated in float64.");
    m.def("clip_by_global_norm", &clip_by_global_norm, py::arg("grad"), py::arg("max_norm"),
          "In place: if norm > max_norm, grad *= max_norm / norm. Returns the norm before.");

    // ---- training core ----
    py::class_<pycvnn::UpdateRule>(
        m, "UpdateRule",
        "One optimizer's rule and hyperparameters; lr and the step number t come per step.")
        .def(py::init(&make_update_rule), py::arg("rule"), py::arg("beta") = 0.9,
             py::arg("form") = "ema", py::arg("nesterov") = false, py::arg("rho") = 0.9,
             py::arg("beta1") = 0.9, py::arg("beta2") = 0.999, py::arg("eps") = 1e-8,
             py::arg("weight_decay") = 0.0, py::arg("clip_norm") = 0.0)
        .def("step", &update_rule_step, py::arg("params"), py::arg("grads"), py::arg("state1"),
             py::arg("state2"), py::arg("n_decay"), py::arg("lr"), py::arg("t"),
             "One update of params in place; t >= 1 is this step's number.");
    py::class_<PyLossSpec>(m, "LossSpec", "A loss by name with its options; the batch mean.")
        .def(py::init(&make_loss_spec), py::arg("name"), py::arg("delta") = 1.0,
             py::arg("smooth") = 1e-6, py::arg("from_logits") = true)
        .def(
            "value",
            [](const PyLossSpec& s, py::object p, py::object t) {
                return s.call("_forward", p, t);
            },
            py::arg("pred"), py::arg("target"))
        .def(
            "grad",
            [](const PyLossSpec& s, py::object p, py::object t) {
                return s.call("_backward", p, t);
            },
            py::arg("pred"), py::arg("target"))
        .def_readonly("name", &PyLossSpec::name);
    py::class_<PyNetwork>(m, "Network",
                          "ops [(kind, in, out, activation, alpha)] over one flat parameter arena.")
        .def(py::init(&make_network), py::arg("ops"))
        .def("forward", &network_forward, py::arg("params"), py::arg("x"), py::arg("keep") = true,
             "x (N, in) -> the output (N, out); with keep, this thread's next backward "
             "differentiates this pass.")
        .def("backward", &network_backward, py::arg("params"), py::arg("grads"), py::arg("dout"))
        .def("train_epoch", &network_train_epoch, py::arg("params"), py::arg("grads"),
             py::arg("state1"), py::arg("state2"), py::arg("x"), py::arg("y"), py::arg("order"),
             py::arg("batch_size"), py::arg("lr"), py::arg("t"), py::arg("loss"), py::arg("rule"))
        .def_property_readonly("n_params", [](PyNetwork& n) { return n.n_params; })
        .def_property_readonly("n_decay", [](PyNetwork& n) { return n.n_decay; })
        .def_property_readonly("in_features", [](PyNetwork& n) { return n.ops.front().in; })
        .def_property_readonly("out_features", [](PyNetwork& n) { return n.ops.back().out; });
}
