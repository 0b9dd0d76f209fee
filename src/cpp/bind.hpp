// What the binding files share: the array argument types, the checks that name the argument
// in their messages, and the dtype dispatch. Every binding validates before it computes:
// non-numeric input is a TypeError, a wrong ndim/shape/value/name a ValueError whose message
// names the argument, the expected and the received value. float64 input runs the double
// kernel, any other numeric input the float one; the other arrays are cast to the first
// array's dtype (class ids to int64).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "activations.hpp"
#include "common.hpp"
#include "losses.hpp"
#include "network.hpp"
#include "parallel.hpp"

namespace py = pybind11;

namespace pycvnn::bind {

// An input array: anything np.asarray accepts (lists, scalars, arrays of any layout).
struct ArrayIn {
    py::array a;
};
// An array updated in place: taken as is, checked by require_inplace (never converted, so a
// list or a copy is never silently updated instead of the caller's buffer).
struct ArrayInOut {
    py::object o;
};

}  // namespace pycvnn::bind

namespace pybind11 {
namespace detail {
template <>
struct type_caster<pycvnn::bind::ArrayIn> {
    PYBIND11_TYPE_CASTER(pycvnn::bind::ArrayIn, const_name("numpy.ndarray"));
    bool load(handle src, bool) {
        value.a = py::array::ensure(src);
        if (!value.a) PyErr_Clear();
        return bool(value.a);
    }
};
template <>
struct type_caster<pycvnn::bind::ArrayInOut> {
    PYBIND11_TYPE_CASTER(pycvnn::bind::ArrayInOut, const_name("numpy.ndarray"));
    bool load(handle src, bool) {
        value.o = reinterpret_borrow<object>(src);
        return true;
    }
};
}  // namespace detail
}  // namespace pybind11

namespace pycvnn::bind {

using pycvnn::Activation;
using pycvnn::idx;
using pycvnn::Reduction;

template <typename T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;
using ids_array = carray<std::int64_t>;
using shape_t = std::vector<py::ssize_t>;

// The element type behind a kernel's pointer argument (for the generic kernel lambdas).
template <typename P>
using elem_t = std::remove_const_t<std::remove_pointer_t<P>>;

// ---- messages and checks ----------------------------------------------------------------

inline std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

inline std::string dtype_str(const py::array& a) { return std::string(py::str(a.dtype())); }

inline std::string num_str(double v) { return std::string(py::repr(py::float_(v))); }

[[noreturn]] inline void fail(const std::string& name, const std::string& expected,
                              const std::string& got) {
    throw py::value_error(name + ": expected " + expected + ", got " + got);
}

// float64 input runs the double kernel; any other numeric input is converted to float32.
inline bool is_f64(const py::array& a) {
    return a.dtype().kind() == 'f' && a.dtype().itemsize() == 8;
}

// 4 or 8 for a float32/float64 array in native byte order, else 0 (the dtypes the in-place
// kernels accept).
inline py::ssize_t native_float_size(const py::array& a) {
    const py::dtype d = a.dtype();
    const bool native = d.byteorder() != (PY_BIG_ENDIAN ? '<' : '>');
    return (d.kind() == 'f' && native && (d.itemsize() == 4 || d.itemsize() == 8)) ? d.itemsize()
                                                                                   : 0;
}

inline bool is_integer(const py::array& a) {
    const char k = a.dtype().kind();
    return k == 'i' || k == 'u';
}

inline void require_numeric(const py::array& a, const char* name) {
    const char k = a.dtype().kind();
    if (k != 'f' && k != 'i' && k != 'u' && k != 'b')
        throw py::type_error(std::string(name) + ": expected a numeric array, got dtype " +
                             dtype_str(a));
}

inline void require_ndim(const py::array& a, const char* name, py::ssize_t ndim) {
    if (a.ndim() != ndim)
        fail(name, std::to_string(ndim) + "-d array",
             std::to_string(a.ndim()) + "-d array of shape " + shape_str(a));
}

inline void require_min_ndim(const py::array& a, const char* name, py::ssize_t ndim) {
    if (a.ndim() < ndim)
        fail(name, "an array with at least " + std::to_string(ndim) + " dimension(s)",
             std::to_string(a.ndim()) + "-d array");
}

inline void require_nonempty(const py::array& a, const char* name) {
    if (a.size() == 0) fail(name, "a non-empty array", "shape " + shape_str(a));
}

// Numeric and non-empty: what every input array must be.
inline void require_input(const py::array& a, const char* name) {
    require_numeric(a, name);
    require_nonempty(a, name);
}

inline void require_same_shape(const py::array& a, const char* name, const py::array& ref,
                               const char* ref_name) {
    bool same = a.ndim() == ref.ndim();
    for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == ref.shape(i);
    if (!same) fail(name, "shape " + shape_str(ref) + " (" + ref_name + "'s shape)", shape_str(a));
}

inline void require_dim(const py::array& a, const char* name, py::ssize_t axis, py::ssize_t want,
                        const std::string& what) {
    if (a.shape(axis) != want)
        fail(name,
             "shape[" + std::to_string(axis) + "] == " + std::to_string(want) + " (" + what + ")",
             "shape " + shape_str(a));
}

// The GEMM takes int sizes.
inline void require_int_sizes(const py::array& a, const char* name) {
    for (py::ssize_t i = 0; i < a.ndim(); ++i)
        if (a.shape(i) > INT_MAX) fail(name, "dimensions below 2^31", "shape " + shape_str(a));
}

inline void require_finite(double v, const char* name) {
    if (!std::isfinite(v)) fail(name, "a finite number", num_str(v));
}

inline void require_at_least(double v, const char* name, double lo, bool strict) {
    require_finite(v, name);
    if (strict ? !(v > lo) : !(v >= lo))
        fail(name, std::string(strict ? "a number > " : "a number >= ") + num_str(lo), num_str(v));
}

inline void require_unit_interval(double v, const char* name) {  // [0, 1)
    require_finite(v, name);
    if (!(v >= 0.0 && v < 1.0)) fail(name, "a value in [0, 1)", num_str(v));
}

inline Reduction parse_reduction(const std::string& s) {
    if (s == "mean") return Reduction::Mean;
    if (s == "sum") return Reduction::Sum;
    if (s == "none") return Reduction::None;
    fail("reduction", "one of 'none', 'mean', 'sum'", "'" + s + "'");
}

inline Activation parse_activation(const std::string& s) {
    if (s == "none") return Activation::None;
    std::string names = "'none'";
    for (const auto& info : pycvnn::kActivations) {
        if (s == info.name) return info.act;
        names += std::string(", '") + info.name + "'";
    }
    fail("activation", "one of " + names, "'" + s + "'");
}

// A layer's activation by name; leaky ReLU's alpha must keep a > 0 exactly where z > 0,
// which backward reads f' off.
inline Activation dense_activation(const std::string& activation, double alpha) {
    const Activation act = parse_activation(activation);
    require_finite(alpha, "alpha");
    if (act == Activation::LeakyReLU) require_at_least(alpha, "alpha", 0.0, false);
    return act;
}

inline void require_class_id(std::int64_t id, py::ssize_t at, py::ssize_t C) {
    if (id < 0 || id >= C)
        fail("target", "class ids in [0, " + std::to_string(C) + ")",
             std::to_string(id) + " at index " + std::to_string(at));
}

// Integer class ids (N,) in [0, C), as int64. With check_all, a fresh array holding each id
// as it was checked (the kernels index rows with them after the GIL is released, when another
// thread could rewrite the caller's array); without, the caller's ids (maybe its own buffer),
// checked for dtype and shape only: the caller copies and checks the ids it reads.
inline ids_array class_ids(const py::array& target, py::ssize_t N, py::ssize_t C,
                           bool check_all = true) {
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

inline shape_t shape_of(const py::array& a) { return shape_t(a.shape(), a.shape() + a.ndim()); }

// Run f(T{}) with T the kernel's dtype, chosen by the first input array.
template <typename F>
py::object dispatch(const py::array& first, F&& f) {
    pycvnn::Pool::Session session;  // one thread count for the whole call
    if (is_f64(first)) return f(double());
    return f(float());
}

// ---- in-place buffers (the optimizers, the network's arena): never converted -------------

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
inline Buffers require_inplace(const std::vector<Buffer>& bufs) {
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

// An array argument given as an object: what np.asarray makes of it, else a TypeError.
inline ArrayIn array_in(const py::object& o, const char* name) {
    py::array a = py::array::ensure(o);
    if (!a) {
        PyErr_Clear();
        throw py::type_error(std::string(name) + ": expected an array, got " +
                             std::string(py::str(py::type::handle_of(o).attr("__name__"))));
    }
    return ArrayIn{a};
}

// ---- shared by the training core's bindings ----------------------------------------------

// A loss of kLosses with its options. value/grad check their arrays as the loss's kernel
// bindings do; the training core uses `spec` directly.
struct PyLossSpec {
    std::string name;
    pycvnn::LossSpec spec;
    py::object call(bool backward, const py::object& pred, const py::object& target) const;
};

// How many optimizer state buffers a rule reads and writes.
int n_state(const pycvnn::UpdateRule& r);

// The arena and the state buffers the rule uses, checked (one dtype, one size, C-contiguous).
Buffers arena_buffers(const pycvnn::UpdateRule& rule, const ArrayInOut& params,
                      const ArrayInOut& grads, const ArrayInOut& state1, const ArrayInOut& state2);

// Buffer i as T*, or null when the rule keeps fewer buffers.
template <typename T>
T* state_ptr(Buffers& b, size_t i) {
    return b.arrays.size() > i ? static_cast<T*>(b.w(i)) : nullptr;
}

// The module's parts, one file each.
void bind_kernels(py::module_& m);     // bind_kernels.cpp: gemm, activations, dense
void bind_losses(py::module_& m);      // bind_losses.cpp: the loss kernels and LossSpec
void bind_optimizers(py::module_& m);  // bind_optimizers.cpp: the updates and UpdateRule
void bind_network(py::module_& m);     // bind_network.cpp: Network, threads

}  // namespace pycvnn::bind
