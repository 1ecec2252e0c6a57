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

// Damage describes a log in which some records could not be read.
type Damage struct {
	Path      string
	Offset    int64  // where the first damaged region starts
	Discarded int64  // octets skipped, over every region
	Regions   int    // damaged regions skipped (a torn tail is one)
	Kept      int64  // octets of valid records kept, including those after the damage
	SavedAs   string // where the damaged file was copied for inspection ("" if not)
	Err       error  // why the first damaged record did not read
}

func (d *Damage) Error() string {
	return fmt.Sprintf("%s: %d damaged region(s) from offset %d skipped (%d octets discarded, %d kept, copy kept at %s): %v",
		d.Path, d.Regions, d.Offset, d.Discarded, d.Kept, d.SavedAs, d.Err)
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
	// Written counts every octet written to the log's files: appended batches and
	// compaction snapshots (Appended: the batches alone), so a caller can measure the
	// write amplification of its compaction policy.
	Written, Appended uint64
	Compactions       uint64
}

// Open opens (creating if needed) the log at path and recovers it: it returns the
// valid records, in order, and a *Damage if some could not be read. Recovery skips
// each damaged region and keeps every valid record after it (Recover); a damaged log
// is then replaced (after a copy is saved beside it) by the records kept, so that the
// broker starts with everything it could recover instead of refusing to serve.
func Open(path string, policy Policy) (*Store, []byte, *Damage, error) {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, nil, nil, fmt.Errorf("journal: %w", err)
	}
	valid, regions := Recover(data)
	var damage *Damage
	if len(regions) > 0 {
		damage = &Damage{Path: path, Offset: regions[0].Offset, Regions: len(regions), Kept: int64(len(valid)), Err: regions[0].Err}
		for _, r := range regions {
			damage.Discarded += r.Len
		}
		saved := fmt.Sprintf("%s.corrupt-%d", path, time.Now().Unix())
		if werr := os.WriteFile(saved, data, 0o600); werr == nil {
			damage.SavedAs = saved
		}
		if err := replaceFile(path, valid); err != nil {
			return nil, nil, damage, fmt.Errorf("journal: rewriting %s with the %d octets recovered: %w", path, len(valid), err)
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
//
// A batch holding a record the reader would reject (larger than MaxRecord, or not
// whole) is refused with an error wrapping ErrTooLarge or ErrCorrupt and nothing of it
// is written: the log never holds what recovery would call damage.
func (s *Store) Append(batch []byte, now time.Time) error {
	if len(batch) == 0 {
		return nil
	}
	if err := Check(batch); err != nil {
		return fmt.Errorf("journal: refusing a batch for %s: %w", s.path, err)
	}
	if _, err := s.f.Write(batch); err != nil {
		return fmt.Errorf("journal: writing %s: %w", s.path, err)
	}
	s.Written += uint64(len(batch))
	s.Appended += uint64(len(batch))
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
	if err := Check(snapshot); err != nil {
		return fmt.Errorf("journal: refusing a snapshot for %s: %w", s.path, err)
	}
	if err := replaceFile(s.path, snapshot); err != nil {
		return fmt.Errorf("journal: compacting: %w", err)
	}
	s.f.Close()
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: reopening %s: %w", s.path, err)
	}
	s.f, s.size, s.dirty = f, int64(len(snapshot)), false
	s.Written += uint64(len(snapshot))
	s.Compactions++
	return nil
}

// replaceFile atomically replaces path with data: a temporary file written and
// synced, renamed over path, the directory synced.
func replaceFile(path string, data []byte) error {
	tmp := path + ".tmp"
	tf, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := tf.Write(data); err != nil {
		tf.Close()
		return err
	}
	if err := tf.Sync(); err != nil {
		tf.Close()
		return err
	}
	if err := tf.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
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
