//go:build linux && cgo

package main

// Pebble allocates its block cache and memtables with C's calloc (cgo builds), so they live in
// the C library's heap, not Go's. glibc keeps what is freed there in its arenas (one per thread
// that allocated, up to 8 per CPU) and gives a page back to the system only from an arena's top:
// blocks evicted from the cache, memtables flushed and buffers of a compaction stay resident
// for good. Measured on the 10^6 data set right after a start (README, Round 10: memory): 193 MB
// in glibc's arenas beside a block cache of 70 MB; malloc_trim(0) brought acld from 336 to
// 243 MB RSS.
//
// malloc_trim and mallopt are glibc's; they are referenced weakly so that a build against
// another C library (musl) links and simply does without.

/*
#include <stddef.h>

// struct mallinfo2 of glibc 2.33 and later (malloc.h).
struct acl_mallinfo2 {
	size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};

extern int malloc_trim(size_t pad) __attribute__((weak));
extern int mallopt(int param, int value) __attribute__((weak));
extern struct acl_mallinfo2 mallinfo2(void) __attribute__((weak));

// M_MMAP_THRESHOLD in glibc's malloc.h.
#define ACL_M_MMAP_THRESHOLD -3

static int acl_malloc_trim(void) {
	if (malloc_trim == NULL) {
		return -1;
	}
	return malloc_trim(0);
}

// acl_cheap: bytes the C heap has in use (arenas' chunks and mmapped blocks) and free but
// resident in its arenas; 0 if this C library cannot tell.
static void acl_cheap(size_t *used, size_t *free) {
	*used = 0;
	*free = 0;
	if (mallinfo2 == NULL) {
		return;
	}
	struct acl_mallinfo2 mi = mallinfo2();
	*used = mi.uordblks + mi.hblkhd;
	*free = mi.fordblks;
}

static int acl_mmap_threshold(int bytes) {
	if (mallopt == NULL) {
		return -1;
	}
	return mallopt(ACL_M_MMAP_THRESHOLD, bytes);
}
*/
import "C"

// mmapThreshold: C allocations of this size or more get pages of their own (mmap), returned
// to the system when freed. glibc's default is the same size, but it raises the threshold to
// the size of every such block freed (up to 32 MB): after the first memtable (4-16 MiB) is
// freed, the next ones come from the arenas and their pages stay there. Setting it fixes it.
// Only memtables and a few large buffers are this large; the block cache's blocks are not.
const mmapThreshold = 128 << 10

func init() {
	C.acl_mmap_threshold(C.int(mmapThreshold))
}

// trimCHeap returns the C heap's free pages to the system; false if this C library cannot.
func trimCHeap() bool {
	return C.acl_malloc_trim() >= 0
}

// cHeap answers the C heap's bytes in use (Pebble's blocks, memtables and buffers) and free
// but held in glibc's arenas (what trimCHeap may return); ok is false without glibc 2.33+.
func cHeap() (used, free uint64, ok bool) {
	var u, f C.size_t
	C.acl_cheap(&u, &f)
	return uint64(u), uint64(f), u > 0
}
