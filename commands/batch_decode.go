package commands

import (
	"iter"

	"github.com/acl-es/acl/aggregates"
)

// decodeChunk is how many commands of a batch are decoded before the decoder hands them over:
// enough that the hand-over (a channel send, perhaps a goroutine woken) costs little beside
// decoding them (some 4 µs a command), few enough that deciding starts at once.
const decodeChunk = 64

// decoded is one command of a batch as decodeInBatch returned it, checked by aggregates.Validate
// and hashed (Hash): what a command's decision needs that depends on the command alone.
type decoded struct {
	cmd  aggregates.Command
	hash string
	err  error
}

// decodeOne decodes, validates and hashes one command of a batch, in that order, as run did.
func (s *Service) decodeOne(caller *aggregates.Caller, tenant string, bc BatchCommand) decoded {
	cmd, err := s.decodeInBatch(caller, tenant, bc)
	if err != nil {
		return decoded{err: err}
	}
	if err := aggregates.Validate(cmd); err != nil {
		return decoded{err: withOp(err, cmd.Name())}
	}
	return decoded{cmd: cmd, hash: Hash(cmd)}
}

// decodeAhead yields the batch's commands decoded, in order, in chunks, decoding on another
// goroutine while the caller decides the chunks before: decoding a body was an eighth of the
// batch goroutine's work (round 10's trace), validating and hashing it a tenth of what was left
// (round 11), and none of it depends on what the batch writes (the caller's rights, the body,
// the actor). A caller that stops early (a refused command) stops the decoder.
func (s *Service) decodeAhead(caller *aggregates.Caller, tenant string, cmds []BatchCommand) iter.Seq[[]decoded] {
	return func(yield func([]decoded) bool) {
		stop := make(chan struct{}) // not the batch's context: every command gets its result
		defer close(stop)
		// Two chunks ahead at most: the decoder stays just in front of the deciding.
		out := make(chan []decoded, 2)
		go func() {
			defer close(out)
			for start := 0; start < len(cmds); start += decodeChunk {
				chunk := make([]decoded, 0, min(decodeChunk, len(cmds)-start))
				for _, bc := range cmds[start:min(start+decodeChunk, len(cmds))] {
					chunk = append(chunk, s.decodeOne(caller, tenant, bc))
				}
				select {
				case out <- chunk:
				case <-stop:
					return
				}
			}
		}()
		for chunk := range out {
			if !yield(chunk) {
				return
			}
		}
	}
}
