// The core's own threads: the optimizer update over the whole parameter arena, and on AVX-512
// CPUs every large GEMM (their column panels, or A^T B's rows; see gemm.cpp). Elsewhere large
// GEMMs use OpenBLAS's threads; pycvnn.set_num_threads sets both, and the two never run at the
// same time. Between jobs workers poll for up to 100 us (PYCVNN_SPIN_US), then sleep on a
// condition variable: a training step's jobs come back to back, and a futex wake-up costs tens
// of microseconds on a virtual machine (wide on 2 threads: GD 10.1 -> 9.9 ms a step, Adam
// 11.1 -> 10.8).
#pragma once
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <condition_variable>
#include <type_traits>
#include <mutex>
#include <vector>

#include "common.hpp"

namespace pycvnn {

class Pool {
public:
    static Pool& instance() {
        static Pool* pool = new Pool();  // never destroyed: workers may outlive static teardown
        return *pool;
    }

    // Total threads, the caller included (workers = n - 1).
    void set_threads(int n) {
        std::lock_guard<std::mutex> busy(run_mu_);
        stop_workers();
        n = std::max(1, n);
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = false;
        for (int id = 1; id < n; ++id) {
            pthread_t t;
            // The worker starts from the current generation, read here under mu_: read by the
            // worker itself, a job posted before it first ran would be missed.
            auto* arg = new Start{this, id, generation_};
            if (pthread_create(&t, nullptr, &Pool::entry, arg) != 0) {
                delete arg;
                break;
            }
            workers_.push_back(t);
        }
    }

    int threads() const { return int(workers_.size()) + 1; }

    // How parallel_for splits [0, n): into parts(...) parts, part p starting at part_start(...)
    // (the multiple of align nearest p n / parts: mnist's 784 columns split 384 + 400, not
    // 448 + 336; its 2-thread GD and Adam steps 2.6% faster). Public so that work on the same
    // data later (the optimizer update) can fall to the same threads.
    static int parts(idx n, idx min_per_thread, int threads) {
        return int(std::min<idx>(threads, n / std::max<idx>(min_per_thread, 1)));
    }
    static idx part_start(idx n, int parts, idx align, int p) {
        return p >= parts ? n : std::min(n, (n * p / parts + align / 2) / align * align);
    }

    // f(begin, end) over [0, n) in one contiguous part per thread (parts start on multiples
    // of align), the caller running the first; serial when n is small, there are no workers,
    // or another caller holds the pool. Allocation-free: the job is a function pointer and a
    // context on this stack frame (a std::function holding f would allocate on every step).
    template <typename F>
    void parallel_for(idx n, idx min_per_thread, F&& f, idx align = 64) {
        const int parts = Pool::parts(n, min_per_thread, threads());
        std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
        if (parts <= 1 || !busy.owns_lock()) {
            f(idx(0), n);
            return;
        }
        struct Job {
            std::remove_reference_t<F>* f;
            idx n, align;
            int parts;
            idx start(int p) const { return part_start(n, parts, align, p); }
        } job{&f, n, align, parts};
        auto part = [](void* ctx, int p) {
            const Job& j = *static_cast<Job*>(ctx);
            const idx lo = j.start(p), hi = j.start(p + 1);
            if (lo < hi) (*j.f)(lo, hi);
        };
        {
            std::lock_guard<std::mutex> lk(mu_);
            task_ = part;
            ctx_ = &job;
            parts_ = parts;
            pending_ = parts - 1;
            ++generation_;
        }
        cv_.notify_all();
        part(&job, 0);
        spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; });
        std::unique_lock<std::mutex> lk(mu_);
        done_cv_.wait(lk, [&] { return pending_ == 0; });
    }

    // In a forked child the workers do not exist: forget them (pthread_atfork).
    static void after_fork_in_child() {
        Pool& p = instance();
        new (&p.mu_) std::mutex();
        new (&p.run_mu_) std::mutex();
        new (&p.cv_) std::condition_variable();
        new (&p.done_cv_) std::condition_variable();
        p.workers_.clear();
        p.pending_ = 0;
    }

private:
    Pool() { pthread_atfork(nullptr, nullptr, &Pool::after_fork_in_child); }

    struct Start {
        Pool* pool;
        int id;
        long generation;
    };

    static void* entry(void* arg) {
        const Start start = *static_cast<Start*>(arg);
        delete static_cast<Start*>(arg);
        start.pool->loop(start.id, start.generation);
        return nullptr;
    }

    void loop(int id, long seen) {
        for (;;) {
            void (*task)(void*, int) = nullptr;
            void* ctx = nullptr;
            spin_until([&] { return stop_.load(std::memory_order_acquire) ||
                                    generation_.load(std::memory_order_acquire) != seen; });
            {
                std::unique_lock<std::mutex> lk(mu_);
                cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
                if (stop_) return;
                seen = generation_;
                if (id >= parts_) continue;  // this job has fewer parts than threads
                task = task_;
                ctx = ctx_;
            }
            task(ctx, id);
            std::lock_guard<std::mutex> lk(mu_);
            if (--pending_ == 0) done_cv_.notify_one();
        }
    }

    void stop_workers() {
        {
            std::lock_guard<std::mutex> lk(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        for (pthread_t t : workers_) pthread_join(t, nullptr);
        workers_.clear();
    }

    std::mutex mu_, run_mu_;
    std::condition_variable cv_, done_cv_;
    void (*task_)(void*, int) = nullptr;  // the current job: task_(ctx_, part)
    void* ctx_ = nullptr;
    std::vector<pthread_t> workers_;
    std::atomic<long> generation_{0};
    int parts_ = 0;
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};

    // Polls ready() for a while before the caller blocks: between the back-to-back jobs of a
    // training step a futex wake-up costs tens of microseconds on a virtual machine.
    template <typename F>
    static void spin_until(F&& ready) {
        static const long us = [] {
            const char* e = std::getenv("PYCVNN_SPIN_US");
            return e ? std::atol(e) : 100L;
        }();
        if (us <= 0) return;
        const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
        for (int i = 1;; ++i) {
            if (ready()) return;
#if defined(PYCVNN_X86)
            _mm_pause();
#endif
            if ((i & 63) == 0 && std::chrono::steady_clock::now() > end) return;
        }
    }
};

}  // namespace pycvnn
