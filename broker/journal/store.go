package journal

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Policy is when the log is synced to stable storage.
type Policy uint8

const (
	// PolicyStrict syncs every batch of records before the datagrams of the call that
	// produced them are sent: nothing acknowledged is lost to a crash or power loss.
	PolicyStrict Policy = iota
	// PolicyInterval writes every batch at once (a killed process loses nothing) but
	// syncs at most every SyncInterval: power loss can lose the last interval.
	PolicyInterval
	// PolicyNone writes every batch and never syncs; the OS decides.
	PolicyNone
)

func (p Policy) String() string {
	switch p {
	case PolicyStrict:
		return "strict"
	case PolicyInterval:
		return "interval"
	case PolicyNone:
		return "none"
	}
	return "unknown"
}

// ParsePolicy reads a policy name.
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "strict":
		return PolicyStrict, nil
	case "interval":
		return PolicyInterval, nil
	case "none":
		return PolicyNone, nil
	}
	return 0, fmt.Errorf("durability %q: want strict, interval or none", s)
}

// File is what the store needs of an *os.File; tests substitute one that loses
// unsynced writes at a simulated crash.
type File interface {
	io.Writer
	Sync() error
	Close() error
}

// Damage describes a log whose tail could not be read.
type Damage struct {
	Path      string
	Offset    int64  // octets kept; everything from here on was unreadable
	Discarded int64  // octets dropped
	SavedAs   string // where the damaged file was copied for inspection ("" if not)
	Err       error
}

func (d *Damage) Error() string {
	return fmt.Sprintf("%s: unreadable from offset %d (%d octets discarded, copy kept at %s): %v",
		d.Path, d.Offset, d.Discarded, d.SavedAs, d.Err)
}

// Store is an append-only log file of records.
type Store struct {
	path         string
	policy       Policy
	SyncInterval time.Duration
	f            File
	size         int64
	dirty        bool
	lastSync     time.Time
	Syncs        uint64 // fsync calls, for metrics
}

// Open opens (creating if needed) the log at path and recovers it: it returns the
// valid records, in order, and a *Damage if the tail was corrupt or truncated. A
// damaged log is cut back to its valid prefix (after a copy is saved beside it) so that
// the broker starts with what it could recover instead of refusing to serve.
func Open(path string, policy Policy) (*Store, []byte, *Damage, error) {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, nil, nil, fmt.Errorf("journal: %w", err)
	}
	valid, derr := Scan(data)
	var damage *Damage
	if derr != nil {
		damage = &Damage{Path: path, Offset: int64(len(valid)), Discarded: int64(len(data) - len(valid)), Err: derr}
		saved := fmt.Sprintf("%s.corrupt-%d", path, time.Now().Unix())
		if werr := os.WriteFile(saved, data, 0o600); werr == nil {
			damage.SavedAs = saved
		}
		if err := os.Truncate(path, int64(len(valid))); err != nil {
			return nil, nil, damage, fmt.Errorf("journal: cutting %s back to %d octets: %w", path, len(valid), err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, damage, fmt.Errorf("journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, damage, fmt.Errorf("journal: %w", err)
	}
	s := &Store{path: path, policy: policy, SyncInterval: time.Second, f: f, size: int64(len(valid))}
	return s, valid, damage, nil
}

// NewWithFile returns a store over an already open file (for tests).
func NewWithFile(f File, policy Policy) *Store {
	return &Store{policy: policy, SyncInterval: time.Second, f: f}
}

// Scan returns the longest prefix of data made of whole, valid records, and the error
// that stopped it (nil if all of data is valid).
func Scan(data []byte) ([]byte, error) {
	off := 0
	for off < len(data) {
		_, _, n, err := Next(data[off:])
		if err != nil {
			return data[:off], fmt.Errorf("at offset %d: %w", off, err)
		}
		off += n
	}
	return data, nil
}

// Append writes a batch of records and, under the strict policy, syncs it before
// returning.
func (s *Store) Append(batch []byte, now time.Time) error {
	if len(batch) == 0 {
		return nil
	}
	if _, err := s.f.Write(batch); err != nil {
		return fmt.Errorf("journal: writing %s: %w", s.path, err)
	}
	s.size += int64(len(batch))
	s.dirty = true
	switch s.policy {
	case PolicyStrict:
		return s.Sync(now)
	case PolicyInterval:
		if now.Sub(s.lastSync) >= s.SyncInterval {
			return s.Sync(now)
		}
	}
	return nil
}

// Sync flushes written records to stable storage.
func (s *Store) Sync(now time.Time) error {
	if !s.dirty {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("journal: syncing %s: %w", s.path, err)
	}
	s.Syncs++
	s.dirty = false
	s.lastSync = now
	return nil
}

// Size is the log's length in octets.
func (s *Store) Size() int64 { return s.size }

// Compact replaces the log with snapshot (a complete set of records describing the
// current state): written to a temporary file, synced, then renamed over the log, so a
// crash at any point leaves either the old log or the new one.
func (s *Store) Compact(snapshot []byte) error {
	if s.path == "" {
		return nil
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, snapshot, 0o600); err != nil {
		return fmt.Errorf("journal: compacting: %w", err)
	}
	tf, err := os.OpenFile(tmp, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("journal: compacting: %w", err)
	}
	if err := tf.Sync(); err != nil {
		tf.Close()
		return fmt.Errorf("journal: compacting: %w", err)
	}
	tf.Close()
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("journal: compacting: %w", err)
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		d.Sync()
		d.Close()
	}
	s.f.Close()
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: reopening %s: %w", s.path, err)
	}
	s.f, s.size, s.dirty = f, int64(len(snapshot)), false
	return nil
}

// Close syncs and closes the log.
func (s *Store) Close() error {
	err := s.Sync(time.Now())
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}
