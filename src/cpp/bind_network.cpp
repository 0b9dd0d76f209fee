// The training core's bindings: Network (a forward, a backward and a whole epoch over one
// parameter arena, safe to call from many threads), the Ctrl-C watch around the epoch loop,
// and the thread-count controls.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "bind.hpp"
#include "gemm.hpp"
#include "network.hpp"

namespace pycvnn::bind {
namespace {

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

// a * b (mul) or a + b, or a ValueError naming `name` if it overflows idx.
idx checked(idx a, idx b, bool mul, const std::string& name) {
    idx r;
    if (mul ? __builtin_mul_overflow(a, b, &r) : __builtin_add_overflow(a, b, &r))
        fail(name, std::string("sizes whose ") + (mul ? "product" : "sum") + " fits in 64 bits",
             std::to_string(a) + (mul ? " x " : " + ") + std::to_string(b));
    return r;
}
idx checked_mul(idx a, idx b, const std::string& name) { return checked(a, b, true, name); }
idx checked_add(idx a, idx b, const std::string& name) { return checked(a, b, false, name); }

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
                                        const PyLossSpec& loss, const pycvnn::UpdateRule& rule,
                                        const py::object& sample_weight) {
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
    const bool weighted = !sample_weight.is_none();
    py::array sw;
    if (weighted) {
        sw = py::array::ensure(sample_weight);
        if (!sw) fail("sample_weight", "an array of numbers", py::str(py::type::of(sample_weight)));
        require_input(sw, "sample_weight");
        if (sw.ndim() != 1 || sw.shape(0) != rows)
            fail("sample_weight", "shape (" + std::to_string(rows) + ",)",
                 "shape " + shape_str(sw));
    }
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
        // The weights of the rows in the order, copied and checked as the order is (above).
        std::vector<T> sw_copy;
        if (weighted) {
            carray<T> W(sw);
            sw_copy.resize(size_t(n_order));
            for (idx i = 0; i < n_order; ++i) {
                const T w = W.data()[order_copy[size_t(i)]];
                if (!(w >= 0) || !std::isfinite(w))
                    fail("sample_weight", "finite weights >= 0",
                         std::to_string(double(w)) + " at row " +
                             std::to_string(order_copy[size_t(i)]));
                sw_copy[size_t(i)] = w;
            }
        }
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
                    order_copy.data() + first, weighted ? sw_copy.data() + first : nullptr,
                    n_order - first, batch, lr, t.value + ran, loss.spec, rule, losses.data() + ran,
                    &sigint::count, seen);
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

void bind_network(py::module_& m) {
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
    py::class_<PyNetwork>(m, "Network",
                          "ops [(kind, in, out, activation, alpha)] over one flat parameter arena.")
        .def(py::init(&make_network), py::arg("ops"))
        .def("forward", &network_forward, py::arg("params"), py::arg("x"), py::arg("keep") = true,
             "x (N, in) -> the output (N, out); with keep, this thread's next backward "
             "differentiates this pass.")
        .def("backward", &network_backward, py::arg("params"), py::arg("grads"), py::arg("dout"))
        .def("train_epoch", &network_train_epoch, py::arg("params"), py::arg("grads"),
             py::arg("state1"), py::arg("state2"), py::arg("x"), py::arg("y"), py::arg("order"),
             py::arg("batch_size"), py::arg("lr"), py::arg("t"), py::arg("loss"), py::arg("rule"),
             py::arg("sample_weight") = py::none())
        .def_property_readonly("n_params", [](PyNetwork& n) { return n.n_params; })
        .def_property_readonly("n_decay", [](PyNetwork& n) { return n.n_decay; })
        .def_property_readonly("in_features", [](PyNetwork& n) { return n.ops.front().in; })
        .def_property_readonly("out_features", [](PyNetwork& n) { return n.ops.back().out; });
}

}  // namespace pycvnn::bind
