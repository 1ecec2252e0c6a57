package broker_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/musqratt/musqratt/broker/brokertest"
)

// TestTranscripts replays every broker/testdata/*.txt against a fresh broker and
// compares what it sends with the recorded output (brokertest.RunTranscript documents the
// format). After a deliberate change of behaviour, regenerate with
//
//	go test ./broker -run TestTranscripts -update
//
// and review the diff of the output lines like code.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no transcripts in testdata")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			brokertest.RunTranscript(t, f, *update)
		})
	}
}
