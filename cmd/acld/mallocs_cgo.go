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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// struct mallinfo2 of glibc 2.33 and later (malloc.h).
struct acl_mallinfo2 {
	size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};

extern int malloc_trim(size_t pad) __attribute__((weak));
extern int mallopt(int param, int value) __attribute__((weak));
extern struct acl_mallinfo2 mallinfo2(void) __attribute__((weak));
extern int malloc_info(int options, FILE *fp) __attribute__((weak));

// M_MMAP_THRESHOLD and M_ARENA_MAX in glibc's malloc.h.
#define ACL_M_MMAP_THRESHOLD -3
#define ACL_M_ARENA_MAX -8

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

// ACL_ARENAS is cArenas below. It is set by a constructor, before the Go runtime starts: an
// arena that a thread has taken stays, and by the time Go's init functions run the runtime's
// threads have taken several (6 in this package's tests).
#define ACL_ARENAS 1

// An operator who sets glibc's own arena limit (MALLOC_ARENA_MAX, or arena_max in
// GLIBC_TUNABLES: on many cores, one arena's lock may cost more than its pages) keeps it.
__attribute__((constructor)) static void acl_arena_max(void) {
	const char *tunables = getenv("GLIBC_TUNABLES");
	if (getenv("MALLOC_ARENA_MAX") != NULL || (tunables != NULL && strstr(tunables, "arena_max") != NULL)) {
		return;
	}
	if (mallopt != NULL) {
		mallopt(ACL_M_ARENA_MAX, ACL_ARENAS);
	}
}

// acl_arenas: the arenas malloc_info lists (one <heap nr=...> each); -1 if it cannot tell.
static int acl_arenas(void) {
	if (malloc_info == NULL) {
		return -1;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL) {
		return -1;
	}
	int err = malloc_info(0, f);
	fclose(f);
	int n = 0;
	for (char *p = buf; err == 0 && (p = strstr(p, "<heap nr=")) != NULL; p++) {
		n++;
	}
	free(buf);
	return err == 0 ? n : -1;
}

static void acl_alloc_free(size_t n) {
	free(calloc(1, n));
}
*/
import "C"

// mmapThreshold: C allocations of this size or more get pages of their own (mmap), returned
// to the system when freed. glibc's default is the same size, but it raises the threshold to
// the size of every such block freed (up to 32 MB): after the first memtable (4-16 MiB) is
// freed, the next ones come from the arenas and their pages stay there. Setting it fixes it.
// Only memtables and a few large buffers are this large; the block cache's blocks are not.
const mmapThreshold = 128 << 10

// cArenas is how many arenas glibc's malloc may use. Its default is 8 a CPU, and every thread
// that allocates takes one of its own while there are fewer: the Go runtime runs cgo calls on
// any of its threads, so Pebble's blocks were allocated in some ten arenas and freed into the
// arena of whichever thread had allocated each. A block read into the cache (every cold point
// read) then mostly found no free chunk in its thread's arena and grew that arena's heap by a
// page (mprotect, then a page fault; ~500 mprotect calls a second under the commands
// workload), while blocks evicted from the cache sat free in the others: calloc was 4.2 % of
// acld's CPU there, half the cost of a point read of the command spill. With one arena, every
// freed block serves the next read: 0.8 % (README, "Round 16: Pebble reads under commands").
// Its lock is contended by at most the two cores' threads, for calls of some 100 ns.
const cArenas = C.ACL_ARENAS

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

// arenas answers how many arenas the C heap has (-1: this C library cannot tell), and
// allocFree allocates and frees n bytes of it on the calling thread: what
// TestOneCArena needs to see where a thread's allocations go.
func arenas() int     { return int(C.acl_arenas()) }
func allocFree(n int) { C.acl_alloc_free(C.size_t(n)) }
