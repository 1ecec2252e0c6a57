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
// snapshot when the file outgrows compact_size and has grown by compactGrowth times
// the live state since the last compaction (docs/durability.md).
type journalState struct {
	store       *journal.Store
	policy      journal.Policy
	interval    time.Duration
	compactSize int64
	recovered   []byte    // records read at open, for Restore
	damaged     bool      // the file had damage (already cut out by Open)
	unsynced    time.Time // interval policy: when the oldest unsynced batch was written
	log         *slog.Logger

	// Amortised compaction: the size of the last snapshot (the live state then), when
	// it was written, and the rate limit of its log line.
	liveSize       int64
	lastCompact    time.Time
	compactLogged  time.Time
	compactsQuiet  int
	compactFailure time.Time
}

// Compaction policy. A compaction rewrites the live state L; it runs only once the log
// has grown past compactGrowth × L, i.e. after at least (compactGrowth-1) × L octets of
// appended changes, so each appended octet pays for at most 1/(compactGrowth-1) octets
// of rewrite: with 2, disk writes stay within 3× the changes (each change written once,
// and at most twice more as part of a snapshot). compactMinInterval keeps a burst of
// small changes over a small state from compacting more often than that.
// (Variables so a test can measure the policy this replaced: growth 0, no interval.)
var (
	compactGrowth      int64 = 2
	compactMinInterval       = time.Second
)

const compactLogEvery = time.Minute

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
		logger.Warn("state file damaged; skipped the damage and kept every valid record around it",
			"path", damage.Path, "first_damage_offset", damage.Offset, "damaged_regions", damage.Regions,
			"discarded_octets", damage.Discarded, "kept_octets", damage.Kept, "copy", damage.SavedAs, "err", damage.Err)
	}
	if cfg.SyncInterval > 0 {
		store.SyncInterval = cfg.SyncInterval
	}
	return &journalState{
		store: store, policy: policy, interval: store.SyncInterval,
		compactSize: int64(cfg.CompactSize), recovered: records, damaged: damage != nil, log: logger,
		liveSize: store.Size(),
	}, nil
}

// Restore rebuilds the engine's state from what was recovered, logs what it left
// out, and, when the log held more than the live state (or anything was left out),
// compacts it at once so that the file describes exactly what the broker serves.
func (j *journalState) Restore(b *broker.Broker, now time.Time) error {
	n := len(j.recovered)
	rep := b.Restore(now, j.recovered)
	j.recovered = nil
	if n > 0 {
		j.log.Info("state restored", "octets", n, "records", rep.Records, "sessions", rep.Sessions,
			"subscriptions", rep.Subscriptions, "messages", rep.Messages, "retained", rep.Retained, "topics", rep.Topics)
	}
	if rep.Undecodable > 0 {
		j.log.Warn("state file records skipped: they did not decode", "records", rep.Undecodable, "first_err", rep.FirstError)
	}
	if rep.Dropped() > 0 {
		j.log.Warn("state left out at restore: over a configured limit or invalid under it",
			"sessions", rep.DroppedSessions, "subscriptions", rep.DroppedSubscriptions,
			"registrations", rep.DroppedRegistrations, "messages", rep.DroppedMessages,
			"retained", rep.DroppedRetained, "topics", rep.DroppedTopics, "wills", rep.DroppedWills)
	}
	if (j.compactSize > 0 && j.store.Size() > j.compactSize) || rep.Undecodable > 0 || rep.Dropped() > 0 {
		j.compact(b, now)
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
	if j.dueCompaction(now) {
		j.compact(b, now)
	}
	return nil
}

// dueCompaction: past compact_size, grown compactGrowth-fold since the last
// snapshot, and not within compactMinInterval of the last attempt.
func (j *journalState) dueCompaction(now time.Time) bool {
	size := j.store.Size()
	return j.compactSize > 0 && size > j.compactSize && size >= compactGrowth*j.liveSize &&
		now.Sub(j.lastCompact) >= compactMinInterval
}

func (j *journalState) compact(b *broker.Broker, now time.Time) {
	before := j.store.Size()
	j.lastCompact = now
	if err := j.store.Compact(b.Snapshot(nil)); err != nil {
		// The records are safe in the old file; compaction is tried again later.
		if now.Sub(j.compactFailure) >= compactLogEvery {
			j.log.Error("state file compaction failed", "err", err)
			j.compactFailure = now
		}
		return
	}
	j.unsynced = time.Time{}
	j.liveSize = j.store.Size()
	if now.Sub(j.compactLogged) < compactLogEvery {
		j.compactsQuiet++
		return
	}
	j.log.Info("state file compacted", "from_octets", before, "to_octets", j.liveSize,
		"next_at_octets", max(j.compactSize+1, compactGrowth*j.liveSize), "not_logged_since_last", j.compactsQuiet)
	j.compactLogged, j.compactsQuiet = now, 0
}

// Deadline is when an interval sync is due with no traffic to trigger it.
func (j *journalState) Deadline() time.Time {
	if j.unsynced.IsZero() {
		return time.Time{}
	}
	return j.unsynced.Add(j.interval)
}

func (j *journalState) Close() error { return j.store.Close() }
