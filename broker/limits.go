package broker

import (
	"strings"

	"github.com/musqratt/musqratt/broker/journal"
)

// Budgets a client's requests are checked against before they are granted, so that
// what the broker holds for one client, and what it writes about it, stay bounded
// (docs/config.md, "Limits").

// maxSessionRecord bounds a session's durable record (its subscriptions, registrations,
// will and QoS 2 receipts, as encodeSession writes them): the journal's reader rejects a
// larger record, so a request that would grow it past this is refused (SUBACK or
// WILLTOPICRESP/WILLMSGRESP congestion) instead of acknowledged and lost at the next
// start. A variable so tests can lower it.
var maxSessionRecord = journal.MaxRecord

// topicFits reports whether a topic name or filter is within MaxTopicLength octets and
// MaxTopicLevels levels. Only names and filters a client asks the broker to hold are
// checked (REGISTER, SUBSCRIBE, the will's topic); pre-defined names are the operator's.
func (b *Broker) topicFits(name string) bool {
	if len(name) > b.cfg.MaxTopicLength {
		return false
	}
	// Levels: one more than the separators; counting stops once past the limit.
	levels := 1
	for i := strings.IndexByte(name, '/'); i >= 0; i = strings.IndexByte(name, '/') {
		if levels++; levels > b.cfg.MaxTopicLevels {
			return false
		}
		name = name[i+1:]
	}
	return true
}

// Sizes of the parts of a session record (encodeSession), kept in step with it.
const (
	sessionFixedLen = 4 + 1 + 4 + 4 + 2 + 1 + 4 + 4 + 1 + 1 + 4 + 4 + 4 // ids, counts, flags
	filterEntryLen  = 4 + 1                                             // + the filter
	knownEntryLen   = 2
	qos2EntryLen    = 2 + 8
)

// sessionRecordLen is the length of s's session record body as encodeSession would
// write it now.
func sessionRecordLen(s *session) int {
	return sessionFixedLen + len(s.clientID) + len(s.will.topic) + len(s.will.msg) +
		s.filterOctets + knownEntryLen*len(s.known) + qos2EntryLen*len(s.qos2In)
}

// recordRoom reports whether s's session record may grow by n octets (a subscription
// or a will). It keeps room for the parts that grow without a request that could be
// refused — registrations (the broker REGISTERs every topic a wildcard subscription
// brings, up to the 65534 ids there are) and QoS 2 receipts (up to MaxQoS2Incoming) —
// so that the record can never outgrow maxSessionRecord.
func (b *Broker) recordRoom(s *session, n int) bool {
	reserve := knownEntryLen*max(0, 65534-len(s.known)) + qos2EntryLen*max(0, b.cfg.MaxQoS2Incoming-len(s.qos2In))
	return sessionRecordLen(s)+n+reserve <= maxSessionRecord
}

// addFilter records s's subscription to filter at qos in the session and the index.
func (b *Broker) addFilter(s *session, filter string, qos uint8) {
	if s.filters == nil {
		s.filters = make(map[string]uint8)
	}
	if _, ok := s.filters[filter]; !ok {
		s.filterOctets += filterEntryLen + len(filter)
	}
	s.filters[filter] = qos
	if b.subs.Add(filter, s.sid, qos) {
		b.c.gauges.subscriptions.Add(1)
	}
}

// removeFilter forgets s's subscription to filter; it reports whether there was one.
func (b *Broker) removeFilter(s *session, filter string) bool {
	if _, ok := s.filters[filter]; !ok {
		return false
	}
	delete(s.filters, filter)
	s.filterOctets -= filterEntryLen + len(filter)
	if b.subs.Remove(filter, s.sid) {
		b.c.gauges.subscriptions.Add(-1)
	}
	return true
}

// clearFilters forgets every subscription of s.
func (b *Broker) clearFilters(s *session) {
	for f := range s.filters {
		if b.subs.Remove(f, s.sid) {
			b.c.gauges.subscriptions.Add(-1)
		}
	}
	s.filters = nil
	s.filterOctets = 0
}
