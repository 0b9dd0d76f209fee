// PYBIND11_MODULE(_core): check arrays, allocate outputs, release the GIL, call kernels. No
// math here; the parts live one family a file (bind_*.cpp), their shared checks in bind.hpp.
#include "bind.hpp"
#include "gemm.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "pycvnn's compiled core (see pycvnn.reference for the NumPy twin)";
    m.attr("__version__") = PYCVNN_VERSION;
    m.def("_blas_load", &pycvnn::blas_load, "Resolve the BLAS symbols; False if none are loaded.");
    m.def("_blas_name", &pycvnn::blas_name);
    pycvnn::bind::bind_kernels(m);
    pycvnn::bind::bind_losses(m);
    pycvnn::bind::bind_optimizers(m);
    pycvnn::bind::bind_network(m);
}
