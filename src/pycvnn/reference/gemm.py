import numpy as np


def _float(a):
    a = np.asarray(a)
    return a if a.dtype == np.float64 else a.astype(np.float32)


def matmul(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b); float64 if a is float64, else float32."""
    a = _float(a)
    b = np.asarray(b).astype(a.dtype, copy=False)
    return np.ascontiguousarray((a.T if trans_a else a) @ (b.T if trans_b else b))
