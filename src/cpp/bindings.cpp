// PYBIND11_MODULE(_core): check arrays, allocate outputs, release the GIL, call kernels. No math.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "common.hpp"
#include "gemm.hpp"

namespace py = pybind11;
using pycvnn::idx;

namespace {

template <typename T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// float64 input runs the double kernel; any other numeric input is converted to float32.
bool is_f64(const py::array& a) { return a.dtype().is(py::dtype::of<double>()); }

void require_numeric(const py::array& a, const char* name) {
    const char k = a.dtype().kind();
    if (k != 'f' && k != 'i' && k != 'u' && k != 'b')
        throw py::type_error(std::string(name) + ": expected a numeric array, got dtype " +
                             std::string(py::str(a.dtype())));
}

void require_ndim(const py::array& a, const char* name, py::ssize_t ndim) {
    if (a.ndim() != ndim)
        throw py::value_error(std::string(name) + ": expected " + std::to_string(ndim) +
                              "-d array, got " + std::to_string(a.ndim()) + "-d");
}

void require_nonempty(const py::array& a, const char* name) {
    if (a.size() == 0) throw py::value_error(std::string(name) + ": expected a non-empty array");
}

// ---- gemm -------------------------------------------------------------------------------

template <typename T>
py::array_t<T> matmul_impl(const py::array& a_in, const py::array& b_in, bool ta, bool tb) {
    carray<T> a(a_in), b(b_in);
    const idx m = ta ? a.shape(1) : a.shape(0), ka = ta ? a.shape(0) : a.shape(1);
    const idx kb = tb ? b.shape(1) : b.shape(0), n = tb ? b.shape(0) : b.shape(1);
    if (ka != kb)
        throw py::value_error("b: inner dimension " + std::to_string(kb) + " does not match a's " +
                              std::to_string(ka));
    py::array_t<T> c({m, n});
    const T* A = a.data();
    const T* B = b.data();
    T* C = c.mutable_data();
    {
        py::gil_scoped_release nogil;
        pycvnn::gemm<T>(ta, tb, int(m), int(n), int(ka), T(1), A, int(a.shape(1)), B,
                        int(b.shape(1)), T(0), C, int(n));
    }
    return c;
}

py::array matmul(const py::array& a, const py::array& b, bool trans_a, bool trans_b) {
    require_numeric(a, "a");
    require_numeric(b, "b");
    require_ndim(a, "a", 2);
    require_ndim(b, "b", 2);
    require_nonempty(a, "a");
    require_nonempty(b, "b");
    if (is_f64(a)) return matmul_impl<double>(a, b, trans_a, trans_b);
    return matmul_impl<float>(a, b, trans_a, trans_b);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "pycvnn's compiled core (see pycvnn.reference for the NumPy twin)";
    m.attr("__version__") = PYCVNN_VERSION;

    m.def("_blas_load", &pycvnn::blas_load, "Resolve the BLAS symbols; False if none are loaded.");
    m.def("_blas_name", &pycvnn::blas_name);
    m.def("_set_num_threads", &pycvnn::blas_set_num_threads, py::arg("n"));
    m.def("_get_num_threads", &pycvnn::blas_get_num_threads);

    m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
          py::arg("trans_b") = false, "op(a) @ op(b) through the GEMM entry point.");
}
