package main

import (
	"hash/fnv"
	"math/rand/v2"

	"github.com/google/uuid"
)

// Streams of randomness, one per purpose, so that adding a draw to one (say, records) does not
// shift every other (principals): a data set stays comparable across versions of the tool.
const (
	streamPrincipal uint64 = iota + 1
	streamRecord
	streamOp
	streamQuery
	streamCommandID
)

// rngFor is the generator of one item: a PCG keyed by the seed, the tenant, the purpose and
// the item's index. Items are independent: record 7 is the same whether or not record 6 was
// generated, so any item can be rebuilt on its own.
func rngFor(seed uint64, tenant string, stream uint64, index int) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(tenant))
	k := splitmix(seed ^ splitmix(h.Sum64()) ^ splitmix(stream<<48^uint64(index)))
	return rand.New(rand.NewPCG(k, splitmix(k)))
}

// splitmix is SplitMix64's finalizer: a cheap, well-mixed hash of a 64-bit value.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// commandIDNamespace makes the generator's command ids UUIDv5 of (seed, tenant, phase, item,
// step): deterministic, so the same seed issues the same commands (and a rerun against the
// same server is recognised as retries), and valid canonical UUIDs as the service requires.
var commandIDNamespace = uuid.MustParse("6d7c0b8e-3f0a-4c55-9a3e-7ac1b2e0d001")

func commandID(seed uint64, tenant, phase string, item, step int) string {
	b := make([]byte, 0, 64)
	b = appendUint(b, seed)
	b = append(b, '/')
	b = append(b, tenant...)
	b = append(b, '/')
	b = append(b, phase...)
	b = append(b, '/')
	b = appendUint(b, uint64(item))
	b = append(b, '/')
	b = appendUint(b, uint64(step))
	return uuid.NewSHA1(commandIDNamespace, b).String()
}

func appendUint(b []byte, v uint64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}
