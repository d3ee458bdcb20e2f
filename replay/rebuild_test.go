package replay

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/acl-es/acl/projections"
)

// checkpointOf copies a live model consistently (the live directory is locked while open) and
// returns the copy's directory and applied sequence.
func checkpointOf(t *testing.T, checkpoint func(string) error) (string, uint64) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "live")
	if err := checkpoint(dir); err != nil {
		t.Fatal(err)
	}
	seq, err := appliedIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, seq
}

// TestRebuildEqualsIncremental: the projections model and the audit index rebuilt from the stream
// in one pass are byte-for-byte the ones maintained incrementally, batch by batch, while the
// history was written.
func TestRebuildEqualsIncremental(t *testing.T) {
	s := startStack(t, Options{})
	h := newRandomHistory(s.d, 21)
	h.run(400)
	s.sync(t)
	tests := []struct {
		model Model
		live  func(string) error
	}{
		{ModelProjections, s.db.Checkpoint},
		{ModelAudit, s.svc.Audit().Checkpoint},
	}
	for _, tc := range tests {
		t.Run(string(tc.model), func(t *testing.T) {
			live, seq := checkpointOf(t, tc.live)
			if seq != s.d.seq {
				t.Fatalf("live model at %d, want %d", seq, s.d.seq)
			}
			rebuilt := filepath.Join(t.TempDir(), "rebuilt")
			var reports []Progress
			p, err := Rebuild(context.Background(), s.env.Store, rebuilt, tc.model, seq, func(p Progress) { reports = append(reports, p) })
			if err != nil {
				t.Fatal(err)
			}
			if p.Done != seq || p.Total != seq || p.Events < seq || len(reports) == 0 || reports[len(reports)-1] != p {
				t.Errorf("progress %+v (reports %d), want %d of %d done", p, len(reports), seq, seq)
			}
			r, err := Verify(live, rebuilt)
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK() || r.Keys < 100 {
				t.Errorf("verify: %d keys, %d differences: %+v", r.Keys, r.Differences, r.Listed)
			}
		})
	}
}

// TestVerifyReportsPlanted: a key missing, a key added and a value changed are each reported.
func TestVerifyReportsPlanted(t *testing.T) {
	s := startStack(t, Options{})
	newRandomHistory(s.d, 22).run(100)
	s.sync(t)
	live, seq := checkpointOf(t, s.db.Checkpoint)
	rebuilt := filepath.Join(t.TempDir(), "rebuilt")
	if _, err := Rebuild(context.Background(), s.env.Store, rebuilt, ModelProjections, seq, nil); err != nil {
		t.Fatal(err)
	}
	pb, err := pebble.Open(rebuilt, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	it, err := pb.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for ok := it.First(); ok && len(keys) < 20; ok = it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	it.Close()
	planted := []struct {
		kind string
		do   func() error
	}{
		{"only_a", func() error { return pb.Delete(keys[5], pebble.Sync) }},
		{"only_b", func() error { return pb.Set([]byte("acme\x00zz\x00"), []byte("x"), pebble.Sync) }},
		{"value", func() error { return pb.Set(keys[10], []byte("tampered"), pebble.Sync) }},
	}
	for _, p := range planted {
		if err := p.do(); err != nil {
			t.Fatal(err)
		}
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Verify(live, rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	if r.Differences != len(planted) {
		t.Fatalf("%d differences, want %d: %+v", r.Differences, len(planted), r.Listed)
	}
	for _, p := range planted {
		found := false
		for _, d := range r.Listed {
			found = found || d.Kind == p.kind
		}
		if !found {
			t.Errorf("no difference of kind %s in %+v", p.kind, r.Listed)
		}
	}
	if r.Listed[0].Key == "" || r.Listed[0].Key[0] == 0 {
		t.Errorf("key not printable: %q", r.Listed[0].Key)
	}
}

// TestRebuildRefusesNonEmpty: a rebuild never writes over a directory that holds something.
func TestRebuildRefusesNonEmpty(t *testing.T) {
	s := startStack(t, Options{})
	s.d.tenant("acme", "trackops")
	dir := t.TempDir()
	db, err := projections.OpenDB(dir, projections.DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Rebuild(context.Background(), s.env.Store, dir, ModelProjections, 0, nil); err == nil {
		t.Fatal("rebuilt into a directory holding a model")
	}
}

// TestVerifyLatestCheckpoint: what aclctl verify does while acld runs: copy the newest
// checkpoint, rebuild to its sequence, compare.
func TestVerifyLatestCheckpoint(t *testing.T) {
	s := startStack(t, Options{CheckpointEvery: 20})
	newRandomHistory(s.d, 23).run(150)
	s.sync(t)
	waitCheckpoint(t, s, 20)
	dst := filepath.Join(t.TempDir(), "ckpt")
	seq, err := CopyLatestCheckpoint(s.svc.opts.Dir, dst)
	if err != nil {
		t.Fatal(err)
	}
	if seq < 20 {
		t.Fatalf("latest checkpoint %d", seq)
	}
	r, err := VerifyAgainst(context.Background(), s.env.Store, dst, ModelProjections, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Keys == 0 {
		t.Errorf("verify against checkpoint %d: %d keys, %d differences %+v", seq, r.Keys, r.Differences, r.Listed)
	}
	if _, err := CopyLatestCheckpoint(t.TempDir(), filepath.Join(t.TempDir(), "x")); err == nil {
		t.Errorf("a replay directory without checkpoints gave one")
	}
}
