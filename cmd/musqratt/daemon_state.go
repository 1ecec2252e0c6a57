package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/journal"
	"github.com/musqratt/musqratt/kernel"
)

// journalState is the hosted daemon's kernel.Persistence: the engine's journal records
// appended to cfg.StateFile, synced per the durability policy, compacted into a
// snapshot when the file outgrows compact_size (docs/durability.md).
type journalState struct {
	store       *journal.Store
	policy      journal.Policy
	interval    time.Duration
	compactSize int64
	recovered   []byte    // records read at open, for Restore
	unsynced    time.Time // interval policy: when the oldest unsynced batch was written
	log         *slog.Logger
}

// openState opens (or creates) the state file and reads what it holds; a damaged
// tail is logged and cut off, and the broker starts with what was recovered.
func openState(cfg kernel.Config, logger *slog.Logger) (*journalState, error) {
	policy, err := journal.ParsePolicy(cfg.Durability)
	if err != nil {
		return nil, err
	}
	store, records, damage, err := journal.Open(cfg.StateFile, policy)
	if err != nil {
		return nil, fmt.Errorf("state_file %s: %w", cfg.StateFile, err)
	}
	if damage != nil {
		logger.Warn("state file damaged; starting with what was recovered",
			"path", damage.Path, "kept_octets", damage.Offset, "discarded_octets", damage.Discarded,
			"copy", damage.SavedAs, "err", damage.Err)
	}
	if cfg.SyncInterval > 0 {
		store.SyncInterval = cfg.SyncInterval
	}
	return &journalState{
		store: store, policy: policy, interval: store.SyncInterval,
		compactSize: int64(cfg.CompactSize), recovered: records, log: logger,
	}, nil
}

func (j *journalState) Restore(b *broker.Broker, now time.Time) error {
	n := len(j.recovered)
	err := b.Restore(now, j.recovered)
	j.recovered = nil
	if err != nil {
		return err
	}
	if n > 0 {
		j.log.Info("state restored", "octets", n)
	}
	return nil
}

// Commit writes what the last engine call changed (synced first under the strict
// policy), syncs an interval's worth when due, and compacts an oversized file.
func (j *journalState) Commit(b *broker.Broker, now time.Time) error {
	batch := b.TakeJournal()
	if err := j.store.Append(batch, now); err != nil {
		return err
	}
	if j.policy == journal.PolicyInterval {
		if len(batch) > 0 && j.unsynced.IsZero() {
			j.unsynced = now
		}
		if !j.unsynced.IsZero() && now.Sub(j.unsynced) >= j.interval {
			if err := j.store.Sync(now); err != nil {
				return err
			}
			j.unsynced = time.Time{}
		}
	}
	if j.compactSize > 0 && j.store.Size() > j.compactSize {
		before := j.store.Size()
		if err := j.store.Compact(b.Snapshot(nil)); err != nil {
			// The records are safe in the old file; compaction is tried again later.
			j.log.Error("state file compaction failed", "err", err)
		} else {
			j.unsynced = time.Time{}
			j.log.Info("state file compacted", "from_octets", before, "to_octets", j.store.Size())
		}
	}
	return nil
}

// Deadline is when an interval sync is due with no traffic to trigger it.
func (j *journalState) Deadline() time.Time {
	if j.unsynced.IsZero() {
		return time.Time{}
	}
	return j.unsynced.Add(j.interval)
}

func (j *journalState) Close() error { return j.store.Close() }
