// The core's own threads: the optimizer update over the whole parameter arena, and on AVX-512
// CPUs every large GEMM (their column panels, or A^T B's rows; see gemm.cpp). Elsewhere large
// GEMMs use OpenBLAS's threads; pycvnn.set_num_threads sets both, and the two never run at the
// same time.
//
// Thread count. set_num_threads records a request; it is applied (workers started or stopped,
// OpenBLAS told) only while no Session is open, at once or when the last open Session closes.
// Every call into the core opens a Session, and fit keeps one open for its whole run: a call
// sees one count from start to end, so a fit gives the weights of a fit at that fixed count,
// and nothing waits on anything to change it.
//
// Jobs. parallel_for splits [0, n) into parts fixed by the count alone; the caller and the
// workers claim parts from a shared counter, so the result never depends on which thread ran
// which part, and a part no worker claimed in time is run by the caller: a job finishes even
// with fewer workers than parts, whatever the count did meanwhile.
//
// Load. Between jobs workers poll for up to 100 us (PYCVNN_SPIN_US), then sleep on a condition
// variable: a training step's jobs come back to back and a futex wake-up costs tens of
// microseconds on a virtual machine. When the machine has fewer free cores than runnable
// threads, polling workers take turns with the caller on its core, and a worker that claimed a
// part may be descheduled in it while the caller waits. The caller counts its own involuntary
// context switches (Linux) over 4 ms windows of parallel work; two or more in one window (its
// core was taken from it) make the pool run jobs on the caller alone, workers asleep, for a
// back-off period (8 ms, doubling to 512 ms while it repeats; a clean window starts over)
// before it tries its workers again. A worker's lateness alone is no signal: on an idle virtual
// machine vCPUs stall now and then, and backing off for it cost the idle speed-up.
#pragma once
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <type_traits>
#include <vector>

#include "common.hpp"

namespace pycvnn {

class Pool {
public:
    static Pool& instance() {
        static Pool* pool = new Pool();  // never destroyed: workers may outlive static teardown
        return *pool;
    }

    // The count a call on this thread uses: its Session's, else the applied one.
    int threads() const { return pinned_ > 0 ? pinned_ : applied_.load(std::memory_order_relaxed); }
    int requested() const { return requested_.load(std::memory_order_relaxed); }

    // Total threads, the caller included (workers = n - 1), from the next moment no Session is
    // open. Never blocks on running work.
    void request_threads(int n) {
        std::lock_guard<std::mutex> lk(session_mu_);
        requested_ = std::max(1, n);
        if (open_ == 0) apply_locked();
    }

    // Called with the new count whenever it is applied (OpenBLAS's setter).
    void set_resize_hook(void (*hook)(int)) { hook_ = hook; }

    // Pins the thread count for the calls on this thread while any Session of the thread is
    // open (the first pins, the last unpins, in any order). Closed on another thread it only
    // counts as closed. Cheap: a mutex taken twice.
    class Session {
    public:
        Session() : pool_(instance()), owner_(std::this_thread::get_id()) {
            std::lock_guard<std::mutex> lk(pool_.session_mu_);
            if (pool_.open_ == 0) pool_.apply_locked();
            ++pool_.open_;
            if (depth_++ == 0) pinned_ = pool_.applied_.load(std::memory_order_relaxed);
        }
        ~Session() {
            if (std::this_thread::get_id() == owner_ && --depth_ == 0) pinned_ = 0;
            std::lock_guard<std::mutex> lk(pool_.session_mu_);
            if (--pool_.open_ == 0) pool_.apply_locked();
        }
        Session(const Session&) = delete;
        Session& operator=(const Session&) = delete;
        std::thread::id owner() const { return owner_; }

    private:
        Pool& pool_;
        std::thread::id owner_;
    };

    // How parallel_for splits [0, n): into parts(...) parts, part p starting at part_start(...)
    // (the multiple of align nearest p n / parts, so mnist's 784 columns split 384 + 400).
    // Public so that work on the same data later (the optimizer update) splits alike.
    static int parts(idx n, idx min_per_thread, int threads) {
        return int(std::max<idx>(1, std::min<idx>(threads, n / std::max<idx>(min_per_thread, 1))));
    }
    static idx part_start(idx n, int parts, idx align, int p) {
        return p >= parts ? n : std::min(n, (n * p / parts + align / 2) / align * align);
    }

    // f(begin, end) over [0, n) in parts(n, min_per_thread, threads()) contiguous parts (parts
    // start on multiples of align). Every part runs exactly once, on the caller or a worker.
    // Allocation-free: the job is a function pointer and a context on this stack frame.
    template <typename F>
    void parallel_for(idx n, idx min_per_thread, F&& f, idx align = 64) {
        const int count = threads();
        const int parts = Pool::parts(n, min_per_thread, count);
        if (parts <= 1) {
            f(idx(0), n);
            return;
        }
        struct Ctx {
            std::remove_reference_t<F>* f;
            idx n, align;
            int parts;
        } ctx{&f, n, align, parts};
        Job job;
        job.ctx = &ctx;
        job.parts = parts;
        job.threads = count;
        job.run = [](void* c, int p) {
            const Ctx& x = *static_cast<Ctx*>(c);
            const idx lo = part_start(x.n, x.parts, x.align, p);
            const idx hi = part_start(x.n, x.parts, x.align, p + 1);
            if (lo < hi) (*x.f)(lo, hi);
        };
        // Another caller holds the workers (concurrent calls), the pool is backing off, or it
        // has no workers: the same parts, in order, here.
        std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
        if (!busy.owns_lock() || backing_off() || workers_alive_.load() == 0) {
            for (int p = 0; p < parts; ++p) job.run(&ctx, p);
            return;
        }
        const auto now = Clock::now();
        if (preempted(now)) {
            back_off(now);
            for (int p = 0; p < parts; ++p) job.run(&ctx, p);
            return;
        }
        {
            std::lock_guard<std::mutex> lk(mu_);
            job_ = &job;
            ++generation_;
        }
        cv_.notify_all();
        job.claim_and_run(0);
        {
            std::lock_guard<std::mutex> lk(mu_);
            job_ = nullptr;  // no worker joins it from now on
        }
        spin_until([&] { return job.active.load(std::memory_order_acquire) == 0; }, true);
        {
            std::unique_lock<std::mutex> lk(mu_);
            done_cv_.wait(lk, [&] { return job.active.load(std::memory_order_relaxed) == 0; });
        }
        // Every worker has left the job: its frame may go. A part's exception (bad_alloc of a
        // thread's scratch) reaches the caller here, whichever thread ran the part.
        if (job.error) std::rethrow_exception(job.error);
    }

    // In a forked child the workers do not exist: forget them (pthread_atfork). The forking
    // thread's Sessions stay open with the count they pinned; its jobs run on it alone until
    // the next resize starts workers.
    static void after_fork_in_child() {
        Pool& p = instance();
        new (&p.mu_) std::mutex();
        new (&p.run_mu_) std::mutex();
        new (&p.session_mu_) std::mutex();
        new (&p.cv_) std::condition_variable();
        new (&p.done_cv_) std::condition_variable();
        p.workers_.release();  // their threads are gone; their records are left behind
        p.workers_.reset(new std::vector<std::unique_ptr<Worker>>());
        p.workers_alive_ = 0;
        p.stopping_ = false;
        p.open_ = depth_;
        p.applied_ = depth_ > 0 ? pinned_ : 1;
        p.job_ = nullptr;
    }

private:
    using Clock = std::chrono::steady_clock;

    Pool() : workers_(new std::vector<std::unique_ptr<Worker>>()) {
        pthread_atfork(nullptr, nullptr, &Pool::after_fork_in_child);
    }

    struct Job {
        void (*run)(void*, int) = nullptr;
        void* ctx = nullptr;
        int parts = 0;
        int threads = 1;             // the caller's count: every part sees it (threads())
        std::atomic<int> next{1};    // the next unclaimed part (the caller runs part 0)
        std::atomic<int> active{0};  // workers inside the job (changed under mu_)
        std::atomic<bool> failed{false};
        std::exception_ptr error;  // the first part's exception; written by who set failed

        // Runs `first` (if >= 0), then claims parts until none are left; after a part threw,
        // the rest are claimed and dropped, and the first exception is kept for the caller.
        void claim_and_run(int first) {
            const int saved = pinned_;
            pinned_ = threads;
            for (int p = first; p < parts; p = next.fetch_add(1, std::memory_order_relaxed)) {
                if (p < 0 || failed.load(std::memory_order_relaxed)) continue;
                try {
                    run(ctx, p);
                } catch (...) {
                    if (!failed.exchange(true)) error = std::current_exception();
                }
            }
            pinned_ = saved;
        }
    };

    struct Worker {
        Pool* pool;
        pthread_t thread{};
        bool stop = false;  // under mu_
        long seen;          // the generation it last looked at
    };

    static void* entry(void* arg) {
        Worker* w = static_cast<Worker*>(arg);
        w->pool->loop(*w);
        return nullptr;
    }

    void loop(Worker& w) {
        for (;;) {
            spin_until(
                [&] {
                    return generation_.load(std::memory_order_acquire) != w.seen ||
                           stopping_.load(std::memory_order_relaxed);
                },
                false);
            Job* job;
            {
                std::unique_lock<std::mutex> lk(mu_);
                cv_.wait(lk, [&] { return w.stop || generation_ != w.seen; });
                if (w.stop) return;
                w.seen = generation_;
                job = job_;
                if (!job) continue;  // finished before this worker looked
                job->active.fetch_add(1, std::memory_order_relaxed);
            }
            job->claim_and_run(-1);
            std::lock_guard<std::mutex> lk(mu_);
            if (job->active.fetch_sub(1, std::memory_order_release) == 1) done_cv_.notify_all();
        }
    }

    // Starts or stops workers to match the request; session_mu_ held and no Session open, so
    // no call is between its parts and the count it pinned.
    void apply_locked() {
        const int want = requested_.load();
        auto& ws = *workers_;
        if (want == applied_.load() && int(ws.size()) == want - 1) return;
        std::vector<std::unique_ptr<Worker>> gone;
        {
            std::lock_guard<std::mutex> lk(mu_);
            while (int(ws.size()) > want - 1) {
                ws.back()->stop = true;
                gone.push_back(std::move(ws.back()));
                ws.pop_back();
            }
            stopping_ = !gone.empty();
        }
        cv_.notify_all();
        for (auto& w : gone) pthread_join(w->thread, nullptr);
        stopping_ = false;
        try {  // short of memory or threads: fewer workers (every job still runs whole)
            ws.reserve(size_t(std::max(0, want - 1)));
            while (int(ws.size()) < want - 1) {
                auto w = std::make_unique<Worker>();
                w->pool = this;
                {
                    // From the current generation: a job posted before it first ran is not its.
                    std::lock_guard<std::mutex> lk(mu_);
                    w->seen = generation_;
                }
                if (pthread_create(&w->thread, nullptr, &Pool::entry, w.get()) != 0) break;
                ws.push_back(std::move(w));
            }
        } catch (const std::bad_alloc&) {
        }
        workers_alive_ = int(ws.size());
        applied_ = want;
        if (hook_) hook_(want);
    }

    // Back-off after a preempted caller (see the header comment); by run_mu_'s holder only,
    // but for serial_until_.
    bool backing_off() const {
        const long long until = serial_until_.load(std::memory_order_relaxed);
        return until != 0 && Clock::now().time_since_epoch().count() < until;
    }
    void back_off(Clock::time_point now) {
        strikes_ = std::min(strikes_ + 1, 7);
        serial_until_ =
            (now + std::chrono::milliseconds(8) * (1 << (strikes_ - 1))).time_since_epoch().count();
        window_end_ = Clock::time_point();
    }
    // At the end of each window of parallel work: whether the caller lost its core twice or
    // more in it. A window left idle for long (the caller busy elsewhere) or opened by another
    // caller starts again instead.
    bool preempted(Clock::time_point now) {
        constexpr auto window = std::chrono::milliseconds(4);
        if (window_end_ != Clock::time_point() && now < window_end_) return false;
        const auto self = std::this_thread::get_id();
        const bool fresh = window_end_ != Clock::time_point() && now < window_end_ + window &&
                           window_owner_ == self;
        long switches = 0;
#if defined(RUSAGE_THREAD)
        rusage u;
        if (getrusage(RUSAGE_THREAD, &u) == 0) switches = u.ru_nivcsw;
#endif
        const bool taken = fresh && switches - window_switches_ >= 2;
        if (fresh && !taken) strikes_ = 0;  // a whole window with the core kept: start over
        window_switches_ = switches;
        window_owner_ = self;
        window_end_ = now + window;
        return taken;
    }

    // Polls ready() for up to PYCVNN_SPIN_US before the caller blocks; the waiting caller
    // (yield) gives its core away between polls, so a descheduled worker can finish its part.
    template <typename R>
    static void spin_until(R&& ready, bool yield) {
        static const long us = [] {
            const char* e = std::getenv("PYCVNN_SPIN_US");
            return e ? std::atol(e) : 100L;
        }();
        if (us <= 0) return;
        const auto end = Clock::now() + std::chrono::microseconds(us);
        for (int i = 1;; ++i) {
            if (ready()) return;
            if (yield && i > 256) {
                sched_yield();
            } else {
#if defined(PYCVNN_X86)
                _mm_pause();
#endif
            }
            if ((i & 63) == 0 && Clock::now() > end) return;
        }
    }

    std::mutex mu_;          // job_, generation_, workers' stop flags
    std::mutex run_mu_;      // held by the caller whose job the workers run
    std::mutex session_mu_;  // open_, resizing
    std::condition_variable cv_, done_cv_;
    Job* job_ = nullptr;
    std::atomic<long> generation_{0};
    std::atomic<bool> stopping_{false};
    std::unique_ptr<std::vector<std::unique_ptr<Worker>>> workers_;
    std::atomic<int> workers_alive_{0};
    std::atomic<int> requested_{1}, applied_{1};
    int open_ = 0;  // Sessions open, under session_mu_
    void (*hook_)(int) = nullptr;
    int strikes_ = 0;  // back-offs since the last clean window; by run_mu_'s holder only
    std::atomic<long long> serial_until_{0};
    Clock::time_point window_end_{};             // the current window's end; zero: none open
    long window_switches_ = 0;                   // its caller's involuntary switches at its start
    std::thread::id window_owner_{};             // its caller
    static inline thread_local int pinned_ = 0;  // this thread's count while depth_ > 0
    static inline thread_local int depth_ = 0;   // Sessions open on this thread
};

}  // namespace pycvnn
