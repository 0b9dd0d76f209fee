/* A call counter for the C allocator, loaded with LD_PRELOAD by bench/alloc_probe.py.
 *
 * Every malloc/calloc/realloc/memalign/posix_memalign/aligned_alloc/valloc call (C++'s
 * operator new goes through malloc) increments pycvnn_alloc_count, then forwards to glibc's
 * own __libc_* entry points (no dlsym, so no recursion through dlsym's calloc).
 *
 *     cc -O2 -shared -fPIC -o libmalloc_count.so bench/malloc_count.c
 */
#include <errno.h>
#include <stddef.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);

unsigned long long pycvnn_alloc_count = 0;

static void count(void) { __atomic_add_fetch(&pycvnn_alloc_count, 1, __ATOMIC_RELAXED); }

void* malloc(size_t n) {
    count();
    return __libc_malloc(n);
}
void* calloc(size_t k, size_t n) {
    count();
    return __libc_calloc(k, n);
}
void* realloc(void* p, size_t n) {
    count();
    return __libc_realloc(p, n);
}
void* memalign(size_t a, size_t n) {
    count();
    return __libc_memalign(a, n);
}
void* aligned_alloc(size_t a, size_t n) {
    count();
    return __libc_memalign(a, n);
}
void* valloc(size_t n) {
    count();
    return __libc_memalign(4096, n);
}
void free(void* p) { __libc_free(p); }

int posix_memalign(void** out, size_t a, size_t n) {
    count();
    void* p = __libc_memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
