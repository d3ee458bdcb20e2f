package projections

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// migrateRoleHolders gives the role holder entries of a model written before they carried a
// value (roleHolderValue) their value, so that a model kept across the upgrade is the model a
// rebuild makes, byte for byte (replay.Verify), and the change feed reads no holder it need
// not. Whether to is told by holdersKey: every batch of this release writes it equal to the
// applied sequence, so a model written since its last migration only by this release (or one
// made by it) needs nothing, not even a pass over its entries. Otherwise an older release
// wrote it: before the values existed (entries without one), or after a rollback, when its
// writer changed principals' levels and kinds and left their entries' values as they were
// (stale values, which a check for entries without a value would not find). Then every
// tenant's entries are rewritten, one batch per tenant, from its stored principals, and
// holdersKey is set last: a crash in between leaves the whole migration to the next start. It
// runs before the projector writes anything. replay migrates the as_of chain's head
// (MigrateRoleHolders); older checkpoints keep entries without the value, for which a holder
// is read, as before.
func migrateRoleHolders(pb *pebble.DB) (migrated int, err error) {
	applied, err := readApplied(pb)
	if err != nil {
		return 0, err
	}
	holders, err := readSeq(pb, holdersKey)
	if err != nil || holders == applied { // 0 and 0: an empty model
		return 0, err
	}
	it, err := pb.NewIter(nil)
	if err != nil {
		return 0, fmt.Errorf("projections: migrate role holders: %w", err)
	}
	var tenants []string
	for ok := it.SeekGE([]byte{'!' + 1}); ok; { // system keys start with '!'
		tenant, _, found := bytes.Cut(it.Key(), []byte{sep})
		if !found {
			_ = it.Close()
			return 0, fmt.Errorf("projections: malformed key %q", it.Key())
		}
		tenants = append(tenants, string(tenant))
		ok = it.SeekGE(prefixEnd(tenantPrefix(string(tenant))))
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("projections: migrate role holders: %w", err)
	}
	for _, tenant := range tenants {
		if err := migrateTenantHolders(pb, tenant); err != nil {
			return migrated, err
		}
		migrated++
	}
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], applied)
	if err := pb.Set(holdersKey, seq[:], pebble.NoSync); err != nil { // after the tenants' batches in the WAL
		return migrated, fmt.Errorf("projections: migrate role holders: %w", err)
	}
	return migrated, nil
}

// migrateTenantHolders writes the role holder entries of every active principal of tenant.
func migrateTenantHolders(pb *pebble.DB, tenant string) error {
	prefix := key(nil, tenant, string(tagPrincipal))
	it, err := pb.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("projections: migrate role holders of %s: %w", tenant, err)
	}
	b := pb.NewBatch()
	defer b.Close()
	var k []byte
	for ok := it.First(); ok; ok = it.Next() {
		p, err := decodePrincipal(it.Value())
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("projections: migrate role holders of %s: %w", tenant, err)
		}
		if !p.Active() {
			continue // no index entries (eachPrincipalEntry)
		}
		v := []byte(roleHolderValue(p))
		for _, role := range p.Roles {
			k = key(k[:0], tenant, string(tagRole), role, p.ID)
			if err := b.Set(k, v, nil); err != nil {
				_ = it.Close()
				return err
			}
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("projections: migrate role holders of %s: %w", tenant, err)
	}
	// NoSync: a crash before the WAL reaches the disk leaves the tenant to migrate again (and
	// a copy for the as_of chain has no WAL, which a synced commit is refused without).
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("projections: migrate role holders of %s: %w", tenant, err)
	}
	return nil
}

// MigrateRoleHolders migrates db's role holder entries as NewProjector does (migrateRoleHolders)
// and answers how many tenants it rewrote. replay calls it on the as_of chain's head, a copy
// of a checkpoint that may be older than the migration, so that the checkpoints made from it
// are the model a rebuild writes too (aclctl verify compares the newest one).
func (db *DB) MigrateRoleHolders() (int, error) { return migrateRoleHolders(db.pb) }
